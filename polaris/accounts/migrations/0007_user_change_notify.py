# Reviewed by hand. Every change to a user row (an update of any column, or a delete) notifies
# ``accounts_user_changed`` with the user's id, delivered at commit. The async tier keeps the rows of the
# users it authenticated only while its LISTEN connection hears these (``outbox.api.feed_repoll``): a
# password, role, active or token-version change is seen there as soon as it commits.

from django.db import migrations

NOTIFY_TRIGGER = """
CREATE OR REPLACE FUNCTION accounts_user_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('accounts_user_changed', OLD.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_user_notify AFTER UPDATE OR DELETE ON accounts_user
    FOR EACH ROW EXECUTE FUNCTION accounts_user_notify();
"""
NOTIFY_TRIGGER_DROP = """
DROP TRIGGER IF EXISTS accounts_user_notify ON accounts_user;
DROP FUNCTION IF EXISTS accounts_user_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_user_agency_staff_index"),
    ]

    operations = [
        migrations.RunSQL(NOTIFY_TRIGGER, NOTIFY_TRIGGER_DROP),
    ]
