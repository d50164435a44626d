from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0001_outbox_models_from_workflow"),
        # workflow.0002 drops the models from workflow's state; rename only once nothing points there.
        ("workflow", "0002_outbox_and_idempotency_moved_out"),
    ]

    operations = [
        migrations.AlterModelTable(name="outboxevent", table=None),
        migrations.AlterModelTable(name="handledevent", table=None),
    ]
