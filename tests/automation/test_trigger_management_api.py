"""The trigger management API: CRUD, validation in the envelope, RBAC, versions, and the backtest."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from automation.models import Trigger, TriggerExecution
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

ALERT = [{"type": "emit_alert", "params": {"message": "Intake $title done"}}]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _body(**overrides):
    return {
        "name": "intake done",
        "event_type": "TaskStateChanged",
        "predicate": 'new_state == "completed"',
        "actions": ALERT,
        **overrides,
    }


def test_crud_and_every_change_bumps_the_version(admin_user):
    api = client_for(admin_user)
    created = api.post("/api/workflow/triggers", _body(), format="json")
    assert created.status_code == 201, created.json()
    trigger_id = created.json()["id"]
    assert created.json()["version"] == 1
    assert api.get(f"/api/workflow/triggers/{trigger_id}").json()["name"] == "intake done"

    disabled = api.patch(f"/api/workflow/triggers/{trigger_id}", {"enabled": False}, format="json")
    assert (disabled.status_code, disabled.json()["enabled"], disabled.json()["version"]) == (200, False, 2)
    timed = api.patch(
        f"/api/workflow/triggers/{trigger_id}",
        {"wait_minutes": 30, "unless": ["TaskStateChanged"]},
        format="json",
    )
    assert (timed.json()["wait_minutes"], timed.json()["unless"], timed.json()["version"]) == (
        30,
        ["TaskStateChanged"],
        3,
    )
    assert api.get("/api/workflow/triggers?enabled=false").json()["count"] == 1
    assert api.get("/api/workflow/triggers?enabled=true").json()["count"] == 0

    assert api.delete(f"/api/workflow/triggers/{trigger_id}").status_code == 204
    assert api.get(f"/api/workflow/triggers/{trigger_id}").status_code == 404
    assert api.delete(f"/api/workflow/triggers/{trigger_id}").status_code == 404


def test_idempotency_key_replays_the_first_create(admin_user):
    api = client_for(admin_user)
    first = api.post("/api/workflow/triggers", _body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/workflow/triggers", _body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert Trigger.objects.count() == 1


def test_idempotency_key_replays_the_first_patch_and_bumps_the_version_once(admin_user):
    api = client_for(admin_user)
    trigger_id = api.post("/api/workflow/triggers", _body(), format="json").json()["id"]
    url = f"/api/workflow/triggers/{trigger_id}"
    first = api.patch(url, {"enabled": False}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    again = api.patch(url, {"enabled": False}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (
        200,
        200,
        "true",
    )
    assert again.json() == first.json()
    assert Trigger.objects.get().version == first.json()["version"] == 2  # changed once
    reused = api.patch(url, {"enabled": True}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert (reused.status_code, reused.json()["error_code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert Trigger.objects.get().enabled is False
    # A refused change stores no key: the same key may carry the corrected request.
    bad = api.patch(url, {"predicate": "x ==", "enabled": True}, format="json", HTTP_IDEMPOTENCY_KEY="p-2")
    assert bad.status_code == 400
    fixed = api.patch(url, {"enabled": True}, format="json", HTTP_IDEMPOTENCY_KEY="p-2")
    assert (fixed.status_code, fixed.json()["version"]) == (200, 3)


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"event_type": "TaskStateChnged"}, "event_type", "Unknown event type 'TaskStateChnged'"),
        ({"event_type": "TimerFired"}, "event_type", "Unknown event type"),
        ({"predicate": 'new_state == "completed" and'}, "predicate", "column"),
        ({"actions": [{"type": "send_fax", "params": {}}]}, "actions", "unknown type 'send_fax'"),
        ({"unless": ["TaskStateChanged"]}, "unless", "Only a timed trigger"),
        ({"wait_minutes": 10, "unless": ["Nope"]}, "unless", "Unknown event type 'Nope'"),
        ({"wait_calendar": 999999, "wait_minutes": 10}, "wait_calendar", ""),
        ({"agency": "00000000-0000-0000-0000-000000000000"}, "agency", ""),
    ],
)
def test_invalid_triggers_are_refused_in_the_envelope(admin_user, overrides, field, needle):
    response = client_for(admin_user).post("/api/workflow/triggers", _body(**overrides), format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["error_code"]) == (False, "VALIDATION_ERROR")
    assert needle in " ".join(body["details"][field])
    assert not Trigger.objects.exists()


def test_a_bad_patch_changes_nothing(admin_user):
    api = client_for(admin_user)
    trigger_id = api.post("/api/workflow/triggers", _body(), format="json").json()["id"]
    response = api.patch(f"/api/workflow/triggers/{trigger_id}", {"predicate": "import os"}, format="json")
    assert response.status_code == 400
    assert "predicate" in response.json()["details"]
    trigger = Trigger.objects.get()
    assert (trigger.predicate, trigger.version) == ('new_state == "completed"', 1)


def test_unknown_list_parameters_are_a_400(admin_user):
    response = client_for(admin_user).get("/api/workflow/triggers?enabld=true")
    assert response.status_code == 400
    assert "enabld" in response.json()["details"]


@pytest.mark.parametrize("persona", ["agent", "client_user"])
def test_only_admins_manage_triggers(request, persona, admin_user):
    trigger_id = client_for(admin_user).post("/api/workflow/triggers", _body(), format="json").json()["id"]
    api = client_for(request.getfixturevalue(persona))
    assert api.get("/api/workflow/triggers").status_code == 403
    assert api.post("/api/workflow/triggers", _body(name="x"), format="json").status_code == 403
    assert (
        api.patch(f"/api/workflow/triggers/{trigger_id}", {"enabled": False}, format="json").status_code
        == 403
    )
    assert api.delete(f"/api/workflow/triggers/{trigger_id}").status_code == 403
    assert api.post(f"/api/workflow/triggers/{trigger_id}/backtest", {}, format="json").status_code == 403
    assert Trigger.objects.get().enabled


def test_executions_record_the_version_that_fired(admin_user, make_task, agent):
    from tests.automation.conftest import dispatch_all
    from workflow.services.tasks import task_transition

    api = client_for(admin_user)
    trigger_id = api.post("/api/workflow/triggers", _body(), format="json").json()["id"]
    api.patch(f"/api/workflow/triggers/{trigger_id}", {"position": 5}, format="json")
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    dispatch_all()
    assert TriggerExecution.objects.get(outcome="matched").trigger_version == 2


def _seed_history(make_task, agent, days: int) -> dict:
    """Tasks created and moved over ``days`` days; returns the hand count of completions per day."""
    from workflow.services.tasks import task_transition

    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    expected: dict[str, int] = {}
    for day in range(days):
        for n in range(day + 1):
            task = make_task(title=f"Task {day}-{n}", task_type="intake" if n % 2 == 0 else "assessment")
            task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
            if n % 3 != 2:
                task_transition(task_id=task.pk, target_state="completed", actor=agent)
                if n % 2 == 0:
                    key = (start + timedelta(days=day)).date().isoformat()
                    expected[key] = expected.get(key, 0) + 1
            OutboxEvent.objects.filter(aggregate_id=task.pk).update(
                occurred_at=start + timedelta(days=day, minutes=n)
            )
    return expected


def test_backtest_matches_a_hand_count_and_writes_nothing(admin_user, make_task, agent):
    api = client_for(admin_user)
    trigger_id = api.post(
        "/api/workflow/triggers",
        _body(predicate='task_type == "intake" and new_state == "completed"'),
        format="json",
    ).json()["id"]
    expected = _seed_history(make_task, agent, days=5)
    before = (OutboxEvent.objects.count(), TriggerExecution.objects.count())
    response = api.post(
        f"/api/workflow/triggers/{trigger_id}/backtest",
        {"since": "2026-11-01T00:00:00Z", "until": "2026-11-10T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {d["date"]: d["matched"] for d in body["days"]} == expected
    assert body["matched"] == sum(expected.values())
    # TaskStateChanged events: every task moves to in_progress, two thirds complete.
    assert body["evaluated"] == OutboxEvent.objects.filter(event_type="TaskStateChanged").count()
    assert len(body["sample"]) == min(20, body["matched"])
    assert body["sample"][0]["actions"][0]["params"]["message"].startswith("Intake Task ")
    assert not body["truncated"]
    assert body["timed"] is False
    assert (OutboxEvent.objects.count(), TriggerExecution.objects.count()) == before


def test_backtest_of_a_timed_trigger_counts_fired_and_cancelled(admin_user, make_task, agent):
    api = client_for(admin_user)
    trigger_id = api.post(
        "/api/workflow/triggers",
        {
            "name": "no progress in an hour",
            "event_type": "TaskCreated",
            "predicate": 'new_state == "new"',
            "actions": ALERT,
            "wait_minutes": 60,
            "unless": ["TaskStateChanged"],
        },
        format="json",
    ).json()["id"]
    from workflow.services.tasks import task_transition

    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    moved, idle = make_task(title="moved"), make_task(title="idle")
    task_transition(task_id=moved.pk, target_state="in_progress", actor=agent)
    OutboxEvent.objects.filter(aggregate_id__in=[moved.pk, idle.pk], sequence=1).update(occurred_at=start)
    OutboxEvent.objects.filter(aggregate_id=moved.pk, sequence=2).update(
        occurred_at=start + timedelta(minutes=5)
    )
    body = api.post(
        f"/api/workflow/triggers/{trigger_id}/backtest",
        {"since": "2026-11-01T00:00:00Z", "until": "2026-11-03T00:00:00Z"},
        format="json",
    ).json()
    assert (body["timed"], body["matched"], body["fired"], body["cancelled"]) == (True, 2, 1, 1)
    assert {s["aggregate_id"]: s["timer"] for s in body["sample"]} == {
        str(moved.pk): "cancelled",
        str(idle.pk): "fired",
    }


def test_backtest_validates_its_window(admin_user):
    api = client_for(admin_user)
    trigger_id = api.post("/api/workflow/triggers", _body(), format="json").json()["id"]
    bad = api.post(
        f"/api/workflow/triggers/{trigger_id}/backtest",
        {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        format="json",
    )
    assert bad.status_code == 400
    assert "until" in bad.json()["details"]
    too_long = api.post(
        f"/api/workflow/triggers/{trigger_id}/backtest",
        {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        format="json",
    )
    assert too_long.status_code == 400
    assert api.post("/api/workflow/triggers/999999/backtest", {}, format="json").status_code == 404


def test_every_automation_mutation_declares_the_idempotency_key():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    mutations = [
        ("/api/workflow/triggers/", "post"),
        ("/api/workflow/triggers/{trigger_id}/", "patch"),
        ("/api/workflow/alerts/{alert_id}/acknowledge/", "post"),
        ("/api/workflow/webhook-endpoints/", "post"),
        ("/api/workflow/webhook-endpoints/{endpoint_id}/", "patch"),
        ("/api/workflow/webhook-endpoints/{endpoint_id}/rotate-secret/", "post"),
        ("/api/workflow/webhook-deliveries/{delivery_id}/redeliver/", "post"),
    ]
    for path, method in mutations:
        headers = {p["name"] for p in paths[path][method].get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, (path, method)
