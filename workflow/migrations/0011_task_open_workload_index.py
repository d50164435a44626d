# Reviewed by hand. An agency's open tasks by (assignee, service area), covering what the workload counts of
# them (id for the at-risk SLA join, created_at, due_at): its one grouped pass reads only this index when the
# table is vacuumed, instead of every open row's heap page, and the unassigned queue is a range of it
# (agency, assignee IS NULL). Partial on the open states: it holds the open tasks only (routing.workload).
#
# workflow_task may be big in production: built CONCURRENTLY (no lock on writes), which PostgreSQL refuses
# inside a transaction, hence atomic = False. If the build fails it leaves an INVALID index: drop it
# (DROP INDEX CONCURRENTLY task_open_workload_idx) and migrate again.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("workflow", "0010_checklists_and_approvals"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=models.Index(
                condition=models.Q(("state__in", ["new", "in_progress", "blocked"])),
                fields=["agency", "assignee", "service_area"],
                include=("id", "created_at", "due_at"),
                name="task_open_workload_idx",
            ),
        ),
    ]
