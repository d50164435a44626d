# Reviewed by hand. An agency's staff without reading its clients' rows (clients are most of an agency's
# users): a routing decision reads every staff member of the agency (routing.statements), the workload its
# staff too. Partial on the staff roles, so no read of clients (the name search) is drawn to it. Built
# CONCURRENTLY (no lock on writes), hence atomic = False; a failed build leaves an INVALID index: drop it
# (DROP INDEX CONCURRENTLY user_agency_staff_idx) and migrate again.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0005_user_token_version"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="user",
            index=models.Index(
                condition=models.Q(("role__in", ["supervisor", "agency"])),
                fields=["agency"],
                name="user_agency_staff_idx",
            ),
        ),
    ]
