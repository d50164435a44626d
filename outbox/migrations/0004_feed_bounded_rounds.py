# Bounded feed rounds: the watermark gets resume columns ((xid, sequence, id) order), and the events'
# xid index becomes (xid, sequence, id). Built and dropped CONCURRENTLY: writers of events are never blocked by the upgrade.
# Positions already assigned are kept as they are (nothing to move); events without one get theirs
# from the next rounds, ROUND_LIMIT at a time (outbox.feed).

import uuid

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("outbox", "0003_event_feed"),
    ]

    operations = [
        migrations.AddField(
            model_name="feedstate",
            name="resume_id",
            field=models.UUIDField(default=uuid.UUID(int=0)),
        ),
        migrations.AddField(
            model_name="feedstate",
            name="resume_sequence",
            field=models.PositiveIntegerField(default=0),
        ),
        AddIndexConcurrently(
            model_name="outboxevent",
            index=models.Index(fields=["xid", "sequence", "id"], name="outbox_xid_seq_idx"),
        ),
        RemoveIndexConcurrently(model_name="outboxevent", name="outbox_xid_idx"),
    ]
