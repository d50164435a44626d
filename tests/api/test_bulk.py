"""POST /api/workflow/tasks/bulk: per-item results, effects exactly the successes, dry run, the 500 limit,
filters and Idempotency-Key replay."""

import pytest

from outbox.models import OutboxEvent
from tests.api.conftest import assert_envelope
from workflow.models import Task
from workflow.services.tasks import task_create

pytestmark = pytest.mark.django_db

BULK = "/api/workflow/tasks/bulk"


def test_bulk_of_500_with_failing_guards_and_permissions(
    agent_api, agent, client_user, agency, other_agent, other_client, other_agency
):
    ids, expected = [], {}
    for i in range(500):
        if i % 10 == 0:  # another tenant's task: not found
            task = task_create(
                actor=other_agent, title=f"T{i}", task_type="intake", client=other_client, agency=other_agency
            )
            expected[str(task.pk)] = "NOT_FOUND"
        elif i % 10 == 1:  # no assignee: the has_assignee guard refuses
            task = task_create(
                actor=agent, title=f"T{i}", task_type="intake", client=client_user, agency=agency
            )
            expected[str(task.pk)] = "GUARD_FAILED"
        else:
            task = task_create(
                actor=agent,
                title=f"T{i}",
                task_type="intake",
                client=client_user,
                agency=agency,
                assignee=agent,
            )
            expected[str(task.pk)] = None
        ids.append(str(task.pk))
    events_before = OutboxEvent.objects.count()
    body = {"action": "transition", "ids": ids, "params": {"target_state": "in_progress"}}

    response = agent_api.post(BULK, body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-500")

    assert response.status_code == 200, response.content[:300]
    data = response.json()
    assert data["counts"] == {"total": 500, "succeeded": 400, "failed": 100}
    assert [r["id"] for r in data["results"]] == ids
    for result in data["results"]:
        code = expected[result["id"]]
        assert result["status"] == ("succeeded" if code is None else "failed")
        assert result.get("error_code") == code
    moved = set(Task.objects.filter(state="in_progress").values_list("id", flat=True))
    assert {str(pk) for pk in moved} == {pk for pk, code in expected.items() if code is None}
    assert OutboxEvent.objects.count() == events_before + 400

    replay = agent_api.post(BULK, body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-500")
    assert replay.status_code == 200
    assert replay.json() == data
    assert replay["Idempotent-Replayed"] == "true"
    assert OutboxEvent.objects.count() == events_before + 400


def test_dry_run_writes_nothing(agent_api, make_task):
    tasks = [make_task(), make_task(assignee=None)]
    events_before = OutboxEvent.objects.count()
    response = agent_api.post(
        BULK,
        {
            "action": "transition",
            "ids": [str(t.pk) for t in tasks],
            "params": {"target_state": "in_progress"},
            "dry_run": True,
        },
        format="json",
    )
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["succeeded", "failed"]
    assert response.json()["dry_run"] is True
    assert OutboxEvent.objects.count() == events_before
    assert set(Task.objects.values_list("state", "version")) == {("new", 1)}


def test_bulk_assign_and_update_by_filter(agent_api, make_task, agent):
    for _ in range(3):
        make_task(assignee=None, service_area="benefits")
    make_task(service_area="housing")
    response = agent_api.post(
        BULK,
        {"action": "assign", "filter": {"service_area": "benefits"}, "params": {"assignee": agent.pk}},
        format="json",
    )
    assert response.json()["counts"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert Task.objects.filter(assignee=agent).count() == 4
    response = agent_api.post(
        BULK,
        {"action": "update", "filter": {"service_area": "benefits"}, "params": {"priority": "high"}},
        format="json",
    )
    assert response.json()["counts"]["succeeded"] == 3
    assert OutboxEvent.objects.filter(event_type="TaskUpdated").count() == 3
    assert OutboxEvent.objects.filter(event_type="TaskAssigned").count() == 3


def test_limits_and_bad_requests(agent_api, make_task):
    too_many = agent_api.post(
        BULK,
        {"action": "transition", "ids": [str(make_task().pk)] * 501, "params": {"target_state": "cancelled"}},
        format="json",
    )
    body = assert_envelope(too_many, 400, "VALIDATION_ERROR")
    assert body["details"]["count"] == 501
    assert "501" in body["message"]
    assert_envelope(
        agent_api.post(BULK, {"action": "transition", "params": {}}, format="json"), 400, "VALIDATION_ERROR"
    )
    bad_filter = agent_api.post(
        BULK,
        {"action": "transition", "filter": {"colour": "red"}, "params": {"target_state": "cancelled"}},
        format="json",
    )
    assert "colour" in assert_envelope(bad_filter, 400, "VALIDATION_ERROR")["details"]["filter"]
    bad_params = agent_api.post(
        BULK,
        {"action": "update", "ids": [str(make_task().pk)], "params": {"state": "completed"}},
        format="json",
    )
    assert assert_envelope(bad_params, 400, "VALIDATION_ERROR")["details"]["params"] == {
        "state": ["This field is read-only."]
    }


def test_more_than_500_matches_of_a_filter_is_400_naming_the_count(agent_api, agent, client_user, agency):
    Task.objects.bulk_create(
        Task(title=f"T{i}", task_type="intake", client=client_user, agency=agency) for i in range(501)
    )
    response = agent_api.post(
        BULK,
        {"action": "transition", "filter": {"state": "new"}, "params": {"target_state": "cancelled"}},
        format="json",
    )
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert body["details"]["count"] == 501
    assert not OutboxEvent.objects.filter(event_type="TaskStateChanged").exists()
