from django.db import migrations


class Migration(migrations.Migration):
    """The outbox's models and ``IdempotencyKey`` now live in their own apps; their tables stay put."""

    dependencies = [
        ("workflow", "0001_initial"),
        ("outbox", "0001_outbox_models_from_workflow"),
        ("idempotency", "0001_idempotencykey_from_workflow"),
        # Foreign keys to the event must point at outbox.OutboxEvent before workflow lets go of it.
        ("automation", "0004_event_foreign_keys_to_outbox"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="HandledEvent"),
                migrations.DeleteModel(name="OutboxEvent"),
                migrations.DeleteModel(name="IdempotencyKey"),
            ],
            database_operations=[],
        ),
    ]
