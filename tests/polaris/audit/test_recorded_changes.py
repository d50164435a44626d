"""Every configuration and access change leaves one audit entry, in its own transaction, with actor,
before and after — and never a secret: triggers, webhook endpoints (rotation included), SLA configs and
calendars (services and admin), users and roles, event replays, bulk actions. Deleting a trigger keeps
its execution history."""

import pytest
from django.urls import reverse

from automation.engine import automation_handle_event
from automation.models import Trigger, TriggerExecution
from automation.services import trigger_create, triggers_set_enabled
from outbox.models import OutboxEvent
from outbox.replay import outbox_event_replay
from polaris.accounts.models import User
from polaris.accounts.services import user_upsert
from polaris.audit.models import AuditEntry
from sla.configs import sla_config_create, sla_config_update
from sla.models import BusinessCalendar
from tests.automation.conftest import latest_event
from tests.support.admin_forms import inline_management_data

pytestmark = pytest.mark.django_db
TRIGGERS = "/api/workflow/triggers"
ENDPOINTS = "/api/workflow/webhook-endpoints"
HOURS = '{"mon": [["09:00", "17:00"]]}'


def last(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("id")


def test_trigger_create_update_enable_delete(api_for, supervisor, agency):
    api = api_for(supervisor)
    created = api.post(TRIGGERS, {"name": "t", "event_type": "TaskCreated"}, format="json")
    assert created.status_code == 201, created.data
    pk = created.data["id"]
    entry = last("trigger.created")
    assert (entry.actor_id, entry.agency_id, entry.object_id, entry.before) == (
        supervisor.pk,
        agency.pk,
        str(pk),
        None,
    )
    assert entry.after["name"] == "t"
    assert entry.after["agency_id"] == str(agency.pk)
    assert api.patch(f"{TRIGGERS}/{pk}", {"predicate": 'task_type == "x"'}, format="json").status_code == 200
    entry = last("trigger.updated")
    assert (entry.before["predicate"], entry.after["predicate"]) == ("", 'task_type == "x"')
    assert entry.after["version"] == entry.before["version"] + 1
    assert api.patch(f"{TRIGGERS}/{pk}", {"enabled": False}, format="json").status_code == 200
    assert last("trigger.disabled").after["enabled"] is False
    triggers_set_enabled(trigger_ids=[pk], enabled=True, actor=supervisor)
    assert last("trigger.enabled").before["enabled"] is False
    assert api.delete(f"{TRIGGERS}/{pk}").status_code == 204
    entry = last("trigger.deleted")
    assert (entry.object_id, entry.before["name"], entry.after) == (str(pk), "t", None)


def test_deleting_a_trigger_keeps_its_executions(make_task, api_for, admin_user):
    trigger = trigger_create(name="kept", event_type="TaskCreated")
    automation_handle_event(latest_event(make_task()))
    execution = TriggerExecution.objects.get(trigger=trigger)
    assert api_for(admin_user).delete(f"{TRIGGERS}/{trigger.pk}").status_code == 204
    assert not Trigger.objects.filter(pk=trigger.pk).exists()
    execution.refresh_from_db()
    assert (execution.trigger_id, execution.trigger_name, execution.outcome) == (None, "kept", "matched")


def test_endpoint_changes_and_rotation_never_record_a_secret(api_for, supervisor, agency):
    api = api_for(supervisor)
    created = api.post(ENDPOINTS, {"name": "crm", "url": "https://crm.example.org/h"}, format="json")
    assert created.status_code == 201, created.data
    pk, first_secret = created.data["id"], created.data["secret"]
    assert created.data["agency"] == str(agency.pk)
    assert (
        api.patch(f"{ENDPOINTS}/{pk}", {"url": "https://crm.example.org/v2"}, format="json").status_code
        == 200
    )
    rotated = api.post(f"{ENDPOINTS}/{pk}/rotate-secret", {}, format="json")
    assert rotated.status_code == 200
    assert api.delete(f"{ENDPOINTS}/{pk}").status_code == 204
    entries = list(AuditEntry.objects.filter(object_type="webhookendpoint").order_by("id"))
    assert [e.action for e in entries] == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.deleted",
    ]
    assert {e.actor_id for e in entries} == {supervisor.pk}
    assert {e.agency_id for e in entries} == {agency.pk}
    assert entries[1].before["url"].endswith("/h")
    assert entries[1].after["url"].endswith("/v2")
    assert entries[2].after["secret"] == "rotated"
    everything = str([(e.before, e.after) for e in AuditEntry.objects.all()])
    assert first_secret not in everything
    assert rotated.data["secret"] not in everything
    assert "whsec_" not in everything


def test_sla_config_service_changes(admin_user):
    config = sla_config_create(actor=admin_user, name="Visits", task_type="audit-visit", target_minutes=60)
    assert last("sla_config.created").after["target_minutes"] == 60
    sla_config_update(actor=admin_user, config_id=config.pk, target_minutes=90)
    entry = last("sla_config.updated")
    assert (entry.before["target_minutes"], entry.after["target_minutes"], entry.actor_id) == (
        60,
        90,
        admin_user.pk,
    )


def test_calendar_and_sla_config_admin_changes(client, admin_user):
    client.force_login(admin_user)
    add = reverse("admin:sla_businesscalendar_add")
    response = client.post(
        add,
        {"name": "Office", "time_zone": "UTC", "working_hours": HOURS, "holidays": "[]", "country_code": ""},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    calendar = BusinessCalendar.objects.get(name="Office")
    assert last("business_calendar.created").object_id == str(calendar.pk)
    change = reverse("admin:sla_businesscalendar_change", args=[calendar.pk])
    response = client.post(
        change,
        {"name": "Office", "time_zone": "Europe/London", "working_hours": HOURS, "holidays": "[]"},
    )
    assert response.status_code == 302
    entry = last("business_calendar.updated")
    assert (entry.before["time_zone"], entry.after["time_zone"], entry.actor_id) == (
        "UTC",
        "Europe/London",
        admin_user.pk,
    )


def test_users_and_roles(admin_user, agency, client):
    user, _ = user_upsert(
        username="new", password="pw-secret-1", role="agency", agency=agency, actor=admin_user
    )
    created = last("user.created")
    assert (created.object_id, created.after["role"], created.actor_id) == (
        str(user.pk),
        "agency",
        admin_user.pk,
    )
    user_upsert(username="new", password="pw-secret-2", role="supervisor", agency=agency, actor=admin_user)
    changed = last("user.role_changed")
    assert (changed.before["role"], changed.after["role"]) == ("agency", "supervisor")
    client.force_login(admin_user)
    page = client.get(reverse("admin:accounts_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {"role": "agency", "agency": agency.pk, "date_joined_0": "2026-01-01", "date_joined_1": "00:00"}
    )
    data.pop("groups", None), data.pop("user_permissions", None), data.pop("last_login", None)
    data.pop("date_joined", None)
    data.update(inline_management_data(client, reverse("admin:accounts_user_change", args=[user.pk])))
    response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    entry = last("user.role_changed")
    assert (entry.before["role"], entry.after["role"], entry.actor_id) == (
        "supervisor",
        "agency",
        admin_user.pk,
    )
    assert "pw-secret" not in str(list(AuditEntry.objects.values_list("before", "after")))
    assert User.objects.get(pk=user.pk).role == "agency"


def test_event_replay(admin_user, make_task):
    event = latest_event(make_task())
    OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.DEAD)
    outbox_event_replay(event_id=event.pk, actor=admin_user)
    entry = last("event.replayed")
    assert (entry.object_id, entry.before["status"], entry.after["status"]) == (
        str(event.pk),
        "dead",
        "pending",
    )
    assert entry.agency_id == event.payload["agency_id"] or str(entry.agency_id) == event.payload["agency_id"]


def test_a_bulk_action_is_one_entry_with_its_filter_and_counts(api_for, agent, make_task):
    for _ in range(3):
        make_task(service_area="benefits")
    response = api_for(agent).post(
        "/api/workflow/tasks/bulk",
        {
            "action": "transition",
            "filter": {"service_area": "benefits"},
            "params": {"target_state": "in_progress"},
        },
        format="json",
    )
    assert response.status_code == 200, response.data
    [entry] = AuditEntry.objects.filter(action="task.bulk_transition")
    assert entry.after["filter"] == {"service_area": "benefits"}
    assert entry.after["counts"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert entry.after["target_state"] == "in_progress"
    assert (entry.actor_id, entry.agency_id) == (agent.pk, agent.agency_id)
    dry = api_for(agent).post(
        "/api/workflow/tasks/bulk",
        {
            "action": "transition",
            "filter": {"service_area": "benefits"},
            "params": {"target_state": "blocked"},
            "dry_run": True,
        },
        format="json",
    )
    assert dry.status_code == 200
    assert AuditEntry.objects.filter(action__startswith="task.bulk").count() == 1
