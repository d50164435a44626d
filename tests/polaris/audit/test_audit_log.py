"""The audit log itself: ``audit_record`` (redaction, correlation id, actor kept when the user goes),
append-only in the ORM and in the database, and ``GET /api/workflow/audit`` (scope and filters)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from polaris.audit.models import AppendOnly, AuditEntry
from polaris.audit.services import audit_record, audit_rewrite_allow
from polaris.correlation import reset_correlation_id, set_correlation_id

pytestmark = pytest.mark.django_db
URL = "/api/workflow/audit"


def test_an_entry_has_actor_agency_object_values_and_correlation_id(supervisor, agency):
    token = set_correlation_id("req-42")
    try:
        entry = audit_record(
            actor=supervisor,
            action="thing.changed",
            object_type="thing",
            object_id=7,
            agency_id=agency.pk,
            before={"a": 1},
            after={"a": 2, "when": timezone.now()},
        )
    finally:
        reset_correlation_id(token)
    entry.refresh_from_db()
    assert (entry.actor_id, entry.agency_id) == (supervisor.pk, agency.pk)
    assert entry.actor_username == supervisor.username
    assert (entry.action, entry.object_type, entry.object_id) == ("thing.changed", "thing", "7")
    assert entry.before == {"a": 1}
    assert entry.after["a"] == 2
    assert entry.correlation_id == "req-42"


def test_secrets_are_redacted_wherever_they_appear(admin_user):
    entry = audit_record(
        actor=admin_user,
        action="x.changed",
        object_type="x",
        before={"secret": "whsec_abc", "nested": [{"password": "pw", "api_token": "t"}]},
        after={"secret": "rotated", "previous_secret": "whsec_old", "url": "https://x"},
    )
    text = str(entry.before) + str(entry.after)
    assert "whsec_" not in text
    assert "pw" not in text.replace("password", "")
    assert entry.after["secret"] == "rotated"
    assert entry.after["previous_secret"] == "[redacted]"
    assert entry.after["url"] == "https://x"


def test_entries_cannot_be_changed_or_deleted_through_the_orm(admin_user):
    entry = audit_record(actor=admin_user, action="x.created", object_type="x", after={"v": 1})
    entry.after = {"v": 2}
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(after={"v": 3})
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.after == {"v": 1}


def test_the_database_refuses_update_and_delete(admin_user):
    entry = audit_record(actor=admin_user, action="x.created", object_type="x", after={"v": 1})
    for statement in (
        "UPDATE audit_auditentry SET after = '{}' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk, after={"v": 1}).exists()


def test_an_opened_rewrite_may_change_entries(admin_user):
    entry = audit_record(actor=admin_user, action="x.created", object_type="x", after={"name": "Jo"})
    with transaction.atomic():
        audit_rewrite_allow()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditentry SET after = '{}' WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert entry.after == {}


def test_removing_the_actor_keeps_the_entry_with_the_username(django_user_model):
    someone = django_user_model.objects.create(username="gone", role="admin")
    entry = audit_record(actor=someone, action="x.created", object_type="x")
    someone.delete()  # SET NULL passes the database trigger
    entry.refresh_from_db()
    assert (entry.actor_id, entry.actor_username) == (None, "gone")


# -- the API ---------------------------------------------------------------------------------------------


@pytest.fixture
def entries(admin_user, supervisor, other_supervisor, agency, other_agency):
    mine = audit_record(actor=supervisor, action="trigger.created", object_type="trigger", object_id=1)
    theirs = audit_record(
        actor=other_supervisor, action="trigger.created", object_type="trigger", object_id=2
    )
    global_ = audit_record(actor=admin_user, action="webhook_endpoint.created", object_type="webhookendpoint")
    assert (mine.agency_id, theirs.agency_id, global_.agency_id) == (None, None, None)  # no obj: none given
    return {
        "mine": audit_record(
            actor=supervisor,
            action="trigger.updated",
            object_type="trigger",
            object_id=1,
            agency_id=agency.pk,
        ),
        "theirs": audit_record(
            actor=other_supervisor,
            action="trigger.updated",
            object_type="trigger",
            object_id=2,
            agency_id=other_agency.pk,
        ),
    }


def test_admins_read_everything_supervisors_their_agency_others_403(
    api_for, entries, admin_user, supervisor, agent, client_user
):
    everything = api_for(admin_user).get(URL)
    assert everything.status_code == 200
    assert everything.data["count"] == AuditEntry.objects.count()
    scoped = api_for(supervisor).get(URL)
    assert [row["id"] for row in scoped.data["results"]] == [entries["mine"].pk]
    for user in (agent, client_user):
        response = api_for(user).get(URL)
        assert response.status_code == 403
        assert response.data["success"] is False
        assert response.data["error_code"] == "PERMISSION_DENIED"


def test_the_filters(api_for, entries, admin_user, supervisor):
    admin = api_for(admin_user)

    def ids(**params):
        response = admin.get(URL, params)
        assert response.status_code == 200, response.data
        return {row["id"] for row in response.data["results"]}

    assert ids(actor=supervisor.pk) == set(
        AuditEntry.objects.filter(actor=supervisor).values_list("pk", flat=True)
    )
    assert ids(object_type="trigger", object_id="2") == set(
        AuditEntry.objects.filter(object_type="trigger", object_id="2").values_list("pk", flat=True)
    )
    now = timezone.now()
    assert ids(since=(now + timedelta(minutes=1)).isoformat()) == set()
    assert len(ids(until=(now + timedelta(minutes=1)).isoformat())) == AuditEntry.objects.count()
    assert admin.get(URL, {"since": "yesterday"}).status_code == 400
    assert admin.get(URL, {"nope": "1"}).status_code == 400


def test_the_admin_changelist_is_read_only(client, admin_user, entries):
    client.force_login(admin_user)
    assert client.get("/admin/audit/auditentry/").status_code == 200
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    page = client.get(f"/admin/audit/auditentry/{entries['mine'].pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
