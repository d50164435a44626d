"""Task: ``staff_notes`` (staff only) and ``blocked_reason_internal`` (a block's reason kept from the
client). Both carry database defaults, so adding them rewrites no rows and set-based inserts that name
only the older columns keep working."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflow", "0003_task_fewer_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="blocked_reason_internal",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="task",
            name="staff_notes",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
    ]
