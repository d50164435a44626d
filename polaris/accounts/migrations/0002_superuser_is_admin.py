from django.db import migrations

import polaris.accounts.models


class Migration(migrations.Migration):
    """The user manager's ``create_superuser`` gives the admin role (state only: no SQL)."""

    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[("objects", polaris.accounts.models.UserManager())],
        ),
    ]
