"""Indexes for the "last 24 h" counts (stats API, dashboard) and the admin's newest-first lists.

Built CONCURRENTLY: these tables grow with every event, and a plain CREATE INDEX would block their writes
(the dispatcher's) for as long as the build takes.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automation", "0002_builtin_triggers"),
        ("workflow", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="triggerexecution",
            index=models.Index(fields=["created_at"], name="trigger_execution_created_idx"),
        ),
        AddIndexConcurrently(
            model_name="webhookdelivery",
            index=models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ),
    ]
