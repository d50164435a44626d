"""Clients are served by the agencies they are linked to (``accounts.ClientAgencyLink``); this links the
existing ones so that no agency loses sight of a client it serves today:

- every client with an ``agency`` is linked to that agency;
- every client is linked to each agency that already has tasks or action plans for it.

Clients with no agency and no work stay unlinked: they were the shared pool every agency could list,
search and create work for; now only an administrator (or a supervisor, who may link an unserved client
to their own agency) can give them an agency. The links are written in set-based statements (``ON
CONFLICT DO NOTHING``, so a re-run or a link made meanwhile is harmless), without ``created_by``, and
without ``ClientLinked`` events: they record the state the data was already in, not a decision.
Reversing removes every link (the schema migration that created the table is reversed next).
"""

from django.db import migrations

LINK_SQL = """
INSERT INTO accounts_clientagencylink (id, client_id, agency_id, created_at)
SELECT gen_random_uuid(), pairs.client_id, pairs.agency_id, now()
FROM (
    SELECT u.id AS client_id, u.agency_id FROM accounts_user u
    WHERE u.role = 'client' AND u.agency_id IS NOT NULL
    UNION
    SELECT t.client_id, t.agency_id FROM workflow_task t
    UNION
    SELECT p.client_id, p.agency_id FROM workflow_actionplan p
) AS pairs
JOIN accounts_user c ON c.id = pairs.client_id AND c.role = 'client'
ON CONFLICT (client_id, agency_id) DO NOTHING
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_client_agency_link"),
        ("workflow", "0004_task_staff_notes_internal_reason"),
    ]

    operations = [
        migrations.RunSQL(LINK_SQL, reverse_sql="DELETE FROM accounts_clientagencylink"),
    ]
