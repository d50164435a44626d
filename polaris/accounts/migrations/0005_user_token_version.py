from django.db import migrations, models
from django.db.models import Q


def admin_flags_follow_role(apps, schema_editor):
    """Admin rights come from the role alone from now on (User.save keeps them so): align existing rows."""
    User = apps.get_model("accounts", "User")
    User.objects.filter(role="admin").exclude(is_staff=True, is_superuser=True).update(
        is_staff=True, is_superuser=True
    )
    User.objects.exclude(role="admin").filter(Q(is_staff=True) | Q(is_superuser=True)).update(
        is_staff=False, is_superuser=False
    )


class Migration(migrations.Migration):
    """Revocable tokens: each user's token version (bumped by a password, role or active change), and the
    admin flags brought in line with the role."""

    dependencies = [
        ("accounts", "0004_client_agency_link"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="token_version",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(admin_flags_follow_role, migrations.RunPython.noop),
    ]
