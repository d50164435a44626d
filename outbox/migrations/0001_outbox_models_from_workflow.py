import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


def _content_types_follow(app_label: str, models: tuple[str, ...]):
    """Move the models' content types (and so their permissions and admin log entries) to ``app_label``."""

    def forwards(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        for model in models:
            if not content_type.objects.filter(app_label=app_label, model=model).exists():
                content_type.objects.filter(app_label="workflow", model=model).update(app_label=app_label)

    def backwards(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        for model in models:
            if not content_type.objects.filter(app_label="workflow", model=model).exists():
                content_type.objects.filter(app_label=app_label, model=model).update(app_label="workflow")

    return migrations.RunPython(forwards, backwards)


class Migration(migrations.Migration):
    """The outbox's models move here from ``workflow`` (same tables), then take this app's table names."""

    initial = True

    dependencies = [
        ("workflow", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The table already exists (created by workflow.0001): only the model's home changes.
            state_operations=[
                migrations.CreateModel(
                    name="OutboxEvent",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                            ),
                        ),
                        ("event_type", models.CharField(max_length=64)),
                        ("aggregate_type", models.CharField(max_length=32)),
                        ("aggregate_id", models.UUIDField()),
                        ("sequence", models.PositiveIntegerField()),
                        ("occurred_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("correlation_id", models.CharField(max_length=64)),
                        ("causation_id", models.UUIDField(blank=True, null=True)),
                        ("depth", models.PositiveSmallIntegerField(default=0)),
                        ("payload", models.JSONField(default=dict)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("processing", "Processing"),
                                    ("dispatched", "Dispatched"),
                                    ("dead", "Dead"),
                                ],
                                default="pending",
                                max_length=16,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("locked_until", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True)),
                        ("dispatched_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "workflow_outboxevent",
                        "ordering": ("occurred_at", "aggregate_id", "sequence"),
                    },
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status__in", ["pending", "processing"])),
                        fields=["next_attempt_at"],
                        name="outbox_due_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status__in", ["pending", "processing"])),
                        fields=["aggregate_type", "aggregate_id", "sequence"],
                        name="outbox_undone_aggregate_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status", "dead")), fields=["occurred_at"], name="outbox_dead_idx"
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(fields=["correlation_id"], name="outbox_correlation_idx"),
                ),
                migrations.AddConstraint(
                    model_name="outboxevent",
                    constraint=models.UniqueConstraint(
                        fields=("aggregate_type", "aggregate_id", "sequence"),
                        name="outbox_aggregate_sequence_uniq",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status__in", ["pending", "processing"])),
                        fields=["next_attempt_at"],
                        name="outbox_due_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status__in", ["pending", "processing"])),
                        fields=["next_attempt_at"],
                        name="outbox_due_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="outboxevent",
                    index=models.Index(
                        condition=models.Q(("status__in", ["pending", "processing"])),
                        fields=["next_attempt_at"],
                        name="outbox_due_idx",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="outboxevent",
                    constraint=models.UniqueConstraint(
                        fields=("aggregate_type", "aggregate_id", "sequence"),
                        name="outbox_aggregate_sequence_uniq",
                    ),
                ),
                migrations.CreateModel(
                    name="HandledEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("handler", models.CharField(max_length=100)),
                        ("handled_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "event",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="handled_by",
                                to="outbox.outboxevent",
                            ),
                        ),
                    ],
                    options={"db_table": "workflow_handledevent"},
                ),
                migrations.AddConstraint(
                    model_name="handledevent",
                    constraint=models.UniqueConstraint(
                        fields=("event", "handler"), name="handled_event_once_per_handler"
                    ),
                ),
            ],
            database_operations=[],
        ),
        _content_types_follow("outbox", ("outboxevent", "handledevent")),
    ]
