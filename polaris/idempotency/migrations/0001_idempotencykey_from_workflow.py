import django.db.models.deletion
import django.utils.timezone
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
    """``IdempotencyKey`` moves here from ``workflow`` (same table), then takes this app's table name."""

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
                    name="IdempotencyKey",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("key", models.CharField(max_length=255)),
                        (
                            "scope",
                            models.CharField(
                                help_text="The method and route the key was used on.", max_length=200
                            ),
                        ),
                        ("request_hash", models.CharField(max_length=64)),
                        ("response_status", models.PositiveSmallIntegerField()),
                        ("response_body", models.JSONField()),
                        (
                            "created_at",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "workflow_idempotencykey"},
                ),
                migrations.AddConstraint(
                    model_name="idempotencykey",
                    constraint=models.UniqueConstraint(
                        fields=("user", "scope", "key"), name="idempotency_key_once_per_user"
                    ),
                ),
            ],
            database_operations=[],
        ),
        _content_types_follow("idempotency", ("idempotencykey",)),
    ]
