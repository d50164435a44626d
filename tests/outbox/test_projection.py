"""What a viewer may see of an event, decided in one place (``outbox.projection``)."""

import json

import pytest

from outbox import projection
from outbox.events import event_types_registered
from sla.events import sla_event_for_client

pytestmark = pytest.mark.django_db


def envelope(event_type: str, payload: dict) -> dict:
    return {"id": "e1", "event_type": event_type, "sequence": 1, "payload": payload}


def test_staff_and_the_system_see_events_as_stored(admin_user, agent, supervisor):
    event = envelope("TaskStateChanged", {"reason": "secret", "reason_internal": True})
    for viewer in (None, admin_user, agent, supervisor):
        assert projection.event_project(event, viewer=viewer) is event


def test_a_client_sees_an_internal_reason_blanked(client_user):
    event = envelope("TaskStateChanged", {"task_id": "t", "reason": "secret", "reason_internal": True})
    seen = projection.event_project(event, viewer=client_user)
    assert seen["payload"] == {"task_id": "t", "reason": ""}
    assert event["payload"]["reason"] == "secret"  # the stored event is untouched
    public = envelope("TaskStateChanged", {"reason": "Waiting for your ID", "reason_internal": False})
    assert projection.event_project(public, viewer=client_user)["payload"] == {
        "reason": "Waiting for your ID"
    }


def test_an_event_type_without_a_projection_is_withheld_from_clients(client_user):
    seen = projection.event_project(envelope("SomethingNew", {"anything": 1}), viewer=client_user)
    assert seen["payload"] == {}


def test_every_event_type_declares_what_a_client_sees():
    # TimerFired lives on the timer's stream (never a client's): withheld by default, on purpose.
    undeclared = {t for t in event_types_registered() if projection.client_projection_of(t) is None}
    assert undeclared == {"TimerFired"}


def test_a_client_sees_of_an_sla_event_its_due_time_and_what_happened():
    payload = {
        "task_id": "t",
        "task_state": "new",
        "config_name": "Intake (default)",
        "target_minutes": 60,
        "started_at": "2026-03-02T10:00:00+00:00",
        "due_at": "2026-03-02T11:00:00+00:00",
        "paused_seconds": 0,
        "breached_at": "2026-03-02T11:00:00+00:00",
        "detected_by": "scan",
        "agency_id": "a",
    }
    assert sla_event_for_client(payload) == {
        "task_id": "t",
        "task_state": "new",
        "due_at": "2026-03-02T11:00:00+00:00",
        "breached_at": "2026-03-02T11:00:00+00:00",
    }


def test_the_feed_projection_passes_staff_pages_through_and_rewrites_a_clients(agent, client_user):
    raw = [json.dumps(envelope("TaskStateChanged", {"reason": "secret", "reason_internal": True}))]
    assert projection.feed_events_project(raw, viewer=agent) is raw
    (seen,) = projection.feed_events_project(raw, viewer=client_user)
    assert json.loads(seen)["payload"] == {"reason": ""}


def test_a_second_projection_for_one_event_type_is_refused():
    with pytest.raises(ValueError, match="already has a client projection"):
        projection.client_projection_register("TaskCreated", lambda payload: payload)
