"""Task search (``?search=``, ``workflow.search``): full-text GIN indexes on the ``tsvector`` expressions
the search writes — a task's title and description, and a client's first and last names.

The name index is on ``accounts_user`` but serves the workflow's search only, so it is created here (the
accounts model does not declare it, and its expression must stay the one ``workflow.search`` writes).
Both are built ``CONCURRENTLY`` (a non-atomic migration): writers are not blocked while a large table is
indexed.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models

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
        ("workflow", "0006_task_list_indexes_by_scope"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="task",
            index=GinIndex(SearchVector("title", "description", config="simple"), name="task_search_idx"),
        ),
        migrations.RunPython(client_name_index_create, client_name_index_drop, elidable=False),
    ]
