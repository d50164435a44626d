from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("idempotency", "0001_idempotencykey_from_workflow"),
        ("workflow", "0002_outbox_and_idempotency_moved_out"),
    ]

    operations = [
        migrations.AlterModelTable(name="idempotencykey", table=None),
    ]
