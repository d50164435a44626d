"""Task search (``?search=``, ``workflow.search``): a stored generated ``tsvector`` of each task's title and
description with a GIN index on it, and a GIN index on the ``tsvector`` of the clients' names.

Neither the column nor the indexes are declared on the models: the ORM never reads or writes the
column (a task read does not carry the vector; inserts cannot name a generated column), and only
``workflow.search`` refers to them, by these names. The name index is on ``accounts_user`` but serves the
workflow's search only; its expression is the one ``workflow.search.CLIENT_NAME_VECTOR`` writes.

Adding a stored generated column rewrites ``workflow_task`` once (under its lock); the indexes are built
``CONCURRENTLY`` (a non-atomic migration), so writers are not blocked while they are.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

TASK_SEARCH_COLUMN = (
    "ALTER TABLE workflow_task ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple'::regconfig, COALESCE(title, '') || ' ' || COALESCE(description, ''))) STORED"
)
TASK_SEARCH_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS task_search_idx ON workflow_task USING gin (search_vector)"
)

CLIENT_NAME_INDEX = GinIndex(
    SearchVector("first_name", "last_name", config="simple"),
    condition=models.Q(role="client"),
    name="accounts_user_name_search_idx",
)


def client_name_index_create(apps, schema_editor):
    user = apps.get_model("accounts", "User")
    schema_editor.execute(CLIENT_NAME_INDEX.create_sql(user, schema_editor, concurrently=True))


def client_name_index_drop(apps, schema_editor):
    user = apps.get_model("accounts", "User")
    schema_editor.execute(CLIENT_NAME_INDEX.remove_sql(user, schema_editor, concurrently=True))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0005_user_token_version"),
        ("workflow", "0007_task_waiting_on"),
    ]

    operations = [
        migrations.RunSQL(
            TASK_SEARCH_COLUMN, "ALTER TABLE workflow_task DROP COLUMN IF EXISTS search_vector"
        ),
        migrations.RunSQL(TASK_SEARCH_INDEX, "DROP INDEX CONCURRENTLY IF EXISTS task_search_idx"),
        migrations.RunPython(client_name_index_create, client_name_index_drop, elidable=False),
    ]
