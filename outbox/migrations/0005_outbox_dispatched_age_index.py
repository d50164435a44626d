from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently: the outbox is the hottest table, and a large one must keep taking writes.
    atomic = False

    dependencies = [("outbox", "0004_feed_bounded_rounds")]

    operations = [
        AddIndexConcurrently(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(("status", "dispatched")),
                fields=["occurred_at", "id"],
                name="outbox_dispatched_age_idx",
            ),
        ),
    ]
