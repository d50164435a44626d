# Reviewed by hand. The task lists' default order (created_at DESC, id) within each scope: staff lists filter
# on agency_id, a client's on client_id. Without an index that starts with the scope and continues in the
# list's order, PostgreSQL reads every task of the agency and sorts them to return 20. The (client, state)
# index goes: nothing filters a client's tasks by state alone, and the (client, created_at) one serves the
# client's lookups and the PROTECT check on users; a transition rewrites every index of its row, so the
# number of indexes stays the same plus one.
#
# workflow_task may be big in production: the indexes are built CONCURRENTLY (no lock on writes), which
# PostgreSQL refuses inside a transaction, hence atomic = False. If a concurrent build fails it leaves an
# INVALID index: drop it (DROP INDEX CONCURRENTLY task_agency_created_idx) and migrate again.

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflow", "0005_client_agency_links_backfill"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(fields=["agency", "-created_at", "id"], name="task_agency_created_idx"),
        ),
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(fields=["client", "-created_at", "id"], name="task_client_created_idx"),
        ),
        RemoveIndexConcurrently(model_name="task", name="task_client_state_idx"),
    ]
