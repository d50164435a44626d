"""What a client sees: never staff notes, internal reasons or SLA configuration, whether through the task,
its event history or the event feed; staff see all of it."""

import json

import pytest

from outbox.models import OutboxEvent
from tests.support.api import assert_envelope, bearer_client

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"
FEED = "/api/workflow/events"
NOTE = "note-marker-7f3a: client seemed evasive"
SECRET = "reason-marker-9c1e: waiting on fraud check"


def feed_text(user) -> str:
    response = bearer_client(user).get(FEED, {"limit": 1000})
    assert response.status_code == 200
    return response.content.decode()


def events_text(user, task) -> str:
    response = bearer_client(user).get(f"{TASKS}/{task.pk}/events", {"page_size": 100})
    assert response.status_code == 200
    return response.content.decode()


def test_staff_notes_are_for_staff_only(agent, supervisor, admin_user, client_user, make_task):
    task = make_task()
    patched = bearer_client(agent).patch(f"{TASKS}/{task.pk}", {"staff_notes": NOTE}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["staff_notes"] == NOTE
    for staff in (supervisor, admin_user):
        assert bearer_client(staff).get(f"{TASKS}/{task.pk}").json()["staff_notes"] == NOTE

    # The event names the field and carries no text: no reader of any event ever gets the note.
    event = OutboxEvent.objects.filter(aggregate_id=task.pk, event_type="TaskUpdated").get()
    assert event.payload["changes"] == {"staff_notes": {}}
    assert NOTE not in json.dumps(event.payload)

    client = bearer_client(client_user)
    detail = client.get(f"{TASKS}/{task.pk}").json()
    assert "staff_notes" not in detail
    assert all("staff_notes" not in row for row in client.get(TASKS).json()["results"])
    assert NOTE not in events_text(client_user, task)
    assert NOTE not in feed_text(client_user)
    updated = [
        e
        for e in client.get(f"{TASKS}/{task.pk}/events").json()["results"]
        if e["event_type"] == "TaskUpdated"
    ]
    assert updated[0]["payload"]["changes"] == {"staff_notes": {}}  # that it changed, not what it says


def test_a_client_may_not_set_staff_notes(client_user, make_task):
    task = make_task(assignee=None)
    response = bearer_client(client_user).patch(f"{TASKS}/{task.pk}", {"staff_notes": "x"}, format="json")
    assert_envelope(response, 403, "PERMISSION_DENIED")


def test_an_internal_reason_is_kept_from_the_client(agent, client_user, make_task):
    task = make_task()
    staff = bearer_client(agent)
    blocked = staff.post(
        f"{TASKS}/{task.pk}/transition",
        {"target_state": "blocked", "reason": SECRET, "internal": True},
        format="json",
    )
    assert blocked.status_code == 200, blocked.content
    assert blocked.json()["task"]["blocked_reason"] == SECRET
    assert blocked.json()["task"]["blocked_reason_internal"] is True
    assert blocked.json()["event"]["payload"]["reason_internal"] is True
    stored = OutboxEvent.objects.get(pk=blocked.json()["event"]["id"])
    assert (stored.payload["reason"], stored.payload["reason_internal"]) == (SECRET, True)
    assert SECRET in events_text(agent, task)
    assert SECRET in feed_text(agent)

    client = bearer_client(client_user)
    detail = client.get(f"{TASKS}/{task.pk}").json()
    assert detail["state"] == "blocked"
    assert detail["blocked_reason"] == ""
    assert "blocked_reason_internal" not in detail
    assert SECRET not in events_text(client_user, task)
    assert SECRET not in feed_text(client_user)
    changed = [
        e
        for e in client.get(f"{TASKS}/{task.pk}/events").json()["results"]
        if e["event_type"] == "TaskStateChanged"
    ]
    assert changed[0]["payload"]["reason"] == ""
    assert "reason_internal" not in changed[0]["payload"]

    # Resumed: the internal flag goes with the reason.
    staff.post(f"{TASKS}/{task.pk}/transition", {"target_state": "in_progress"}, format="json")
    task.refresh_from_db()
    assert (task.blocked_reason, task.blocked_reason_internal) == ("", False)


def test_a_reason_not_marked_internal_is_the_clients_to_read(agent, client_user, make_task):
    task = make_task()
    bearer_client(agent).post(
        f"{TASKS}/{task.pk}/transition",
        {"target_state": "blocked", "reason": "Waiting for your ID"},
        format="json",
    )
    assert (
        bearer_client(client_user).get(f"{TASKS}/{task.pk}").json()["blocked_reason"] == "Waiting for your ID"
    )
    assert "Waiting for your ID" in events_text(client_user, task)
    assert "Waiting for your ID" in feed_text(client_user)


def test_a_client_may_not_mark_a_reason_internal(client_user, make_task):
    task = make_task()
    response = bearer_client(client_user).post(
        f"{TASKS}/{task.pk}/transition",
        {"target_state": "cancelled", "reason": "x", "internal": True},
        format="json",
    )
    assert_envelope(response, 403, "PERMISSION_DENIED")


def test_bulk_transitions_take_internal_too(agent, client_user, make_task):
    task = make_task()
    response = bearer_client(agent).post(
        f"{TASKS}/bulk",
        {
            "action": "transition",
            "ids": [str(task.pk)],
            "params": {"target_state": "blocked", "reason": SECRET, "internal": True},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert SECRET not in bearer_client(client_user).get(f"{TASKS}/{task.pk}").content.decode()


def test_the_sla_block_shows_a_client_due_time_and_status_only(agent, client_user, make_task):
    task = make_task()
    staff_block = bearer_client(agent).get(f"{TASKS}/{task.pk}").json()["sla"]
    assert {"config_name", "target_minutes", "due_at", "status"} <= set(staff_block)
    client_block = bearer_client(client_user).get(f"{TASKS}/{task.pk}").json()["sla"]
    assert client_block == {"due_at": staff_block["due_at"], "status": staff_block["status"]}
    listed = bearer_client(client_user).get(TASKS).json()["results"]
    assert all(set(row["sla"] or {}) <= {"due_at", "status"} for row in listed)
