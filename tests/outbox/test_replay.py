"""Replaying dead events: the service and POST /api/workflow/events/{id}/replay."""

import uuid

import pytest
from rest_framework.test import APIClient

from outbox.dispatcher import outbox_dispatch
from outbox.models import HandledEvent, OutboxEvent
from outbox.registry import register_handler
from outbox.replay import outbox_event_replay
from polaris.errors import Conflict, NotFound, PermissionDenied


@pytest.fixture
def dead_event(make_event):
    return make_event(status=OutboxEvent.Status.DEAD, attempts=10, last_error="boom")


def test_an_admin_replays_a_dead_event(dead_event, admin_user):
    event = outbox_event_replay(event_id=dead_event.pk, actor=admin_user)
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 0
    assert event.last_error == "boom"  # kept until the next attempt settles


def test_a_replayed_event_reruns_only_the_handlers_that_had_not_handled_it(dead_event, admin_user):
    calls = []
    register_handler("done-before", lambda event: calls.append("done-before"))
    register_handler("failed-before", lambda event: calls.append("failed-before"))
    HandledEvent.objects.create(handler="done-before", event=dead_event)

    outbox_event_replay(event_id=dead_event.pk, actor=admin_user)
    outbox_dispatch(budget_seconds=10)

    assert calls == ["failed-before"]
    dead_event.refresh_from_db()
    assert dead_event.status == OutboxEvent.Status.DISPATCHED


def test_non_admins_may_not_replay(dead_event, agent, client_user):
    for actor in (agent, client_user):
        with pytest.raises(PermissionDenied):
            outbox_event_replay(event_id=dead_event.pk, actor=actor)
    assert OutboxEvent.objects.get(pk=dead_event.pk).status == OutboxEvent.Status.DEAD


def test_only_dead_events_can_be_replayed(make_event, admin_user):
    for status in (OutboxEvent.Status.PENDING, OutboxEvent.Status.PROCESSING, OutboxEvent.Status.DISPATCHED):
        event = make_event(status=status)
        with pytest.raises(Conflict):
            outbox_event_replay(event_id=event.pk, actor=admin_user)
        assert OutboxEvent.objects.get(pk=event.pk).status == status


def test_unknown_event(admin_user, db):
    with pytest.raises(NotFound):
        outbox_event_replay(event_id=uuid.uuid4(), actor=admin_user)
    with pytest.raises(NotFound):
        outbox_event_replay(event_id="not-a-uuid", actor=admin_user)


def api_client(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize("suffix", ["replay", "replay/"])
def test_api_admin_replay(dead_event, admin_user, suffix):
    response = api_client(admin_user).post(f"/api/workflow/events/{dead_event.pk}/{suffix}")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
    assert response.json()["id"] == str(dead_event.pk)


def test_api_refuses_non_admins_with_the_error_envelope(dead_event, agent):
    response = api_client(agent).post(f"/api/workflow/events/{dead_event.pk}/replay")
    assert response.status_code == 403
    assert response.json()["success"] is False
    assert response.json()["error_code"] == "PERMISSION_DENIED"


def test_api_requires_authentication(dead_event):
    response = api_client().post(f"/api/workflow/events/{dead_event.pk}/replay")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_api_conflict_and_not_found(make_event, admin_user):
    live = make_event()
    response = api_client(admin_user).post(f"/api/workflow/events/{live.pk}/replay")
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"
    assert response.json()["details"]["status"] == "pending"

    response = api_client(admin_user).post(f"/api/workflow/events/{uuid.uuid4()}/replay")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
