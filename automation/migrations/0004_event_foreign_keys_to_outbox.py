import django.db.models.deletion
from django.db import migrations, models


def _event_fk(**options):
    return models.ForeignKey(to="outbox.outboxevent", **options)


class Migration(migrations.Migration):
    """The event model moved to the outbox app (same table): re-point the state, the columns stay."""

    dependencies = [
        ("automation", "0003_created_at_indexes"),
        ("outbox", "0001_outbox_models_from_workflow"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="alert",
                    name="event",
                    field=_event_fk(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="alerts",
                    ),
                ),
                migrations.AlterField(
                    model_name="triggerexecution",
                    name="event",
                    field=_event_fk(
                        on_delete=django.db.models.deletion.CASCADE, related_name="trigger_executions"
                    ),
                ),
                migrations.AlterField(
                    model_name="webhookdelivery",
                    name="event",
                    field=_event_fk(
                        on_delete=django.db.models.deletion.CASCADE, related_name="webhook_deliveries"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
