"""POST /api/workflow/tasks/bulk: per-item results, effects exactly the successes, dry run, the 500 limit,
filters, Idempotency-Key replay, and the transactions: one per item without a key, one for all with it."""

from unittest import mock

import pytest
from django_fsm.signals import post_transition

from outbox import kick
from outbox.models import OutboxEvent
from polaris.idempotency.models import IdempotencyKey
from tests.support.api import assert_envelope
from workflow.models import Task
from workflow.services.tasks import task_create

pytestmark = pytest.mark.django_db

BULK = "/api/workflow/tasks/bulk"


def transition_body(tasks, **extra):
    return {
        "action": "transition",
        "ids": [str(t.pk) for t in tasks],
        "params": {"target_state": "in_progress"},
        **extra,
    }


def states(tasks) -> list[str]:
    by_id = dict(Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("pk", "state"))
    return [by_id[t.pk] for t in tasks]


def writing_transactions(tasks) -> int:
    """How many (top-level) transactions wrote these tasks' TaskStateChanged events (``OutboxEvent.xid``)."""
    events = OutboxEvent.objects.filter(event_type="TaskStateChanged", aggregate_id__in=[t.pk for t in tasks])
    return events.values("xid").distinct().count()


@pytest.fixture
def bug_on():
    """``bug_on(task)``: moving that task raises a RuntimeError inside its transaction (a subscriber's bug,
    not a domain refusal); ``bug_on(None)`` mends it."""
    broken = set()

    def receiver(sender, instance, **kwargs):
        if instance.pk in broken:
            raise RuntimeError("a bug in a post_transition receiver")

    def arm(task):
        broken.clear()
        if task is not None:
            broken.add(task.pk)

    post_transition.connect(receiver, dispatch_uid="bulk-test-bug", weak=False)
    yield arm
    post_transition.disconnect(dispatch_uid="bulk-test-bug")


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


@pytest.mark.django_db(transaction=True)  # the items' commits are real
def test_without_a_key_each_item_commits_in_its_own_transaction_and_the_kick_is_one(
    agent_api, make_task, settings
):
    settings.OUTBOX_KICK_ON_COMMIT = True
    tasks = [make_task() for _ in range(3)]
    with mock.patch.object(kick, "_send_kick") as send:
        response = agent_api.post(BULK, transition_body(tasks), format="json")
    assert response.status_code == 200, response.content[:300]
    assert writing_transactions(tasks) == 3
    assert send.call_count == 1  # one kick for the request, after the last item


@pytest.mark.django_db(transaction=True)
def test_with_a_key_the_items_and_the_key_commit_in_one_transaction(agent_api, make_task, settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    tasks = [make_task() for _ in range(3)]
    with mock.patch.object(kick, "_send_kick") as send:
        response = agent_api.post(BULK, transition_body(tasks), format="json", HTTP_IDEMPOTENCY_KEY="one-tx")
    assert response.status_code == 200, response.content[:300]
    assert writing_transactions(tasks) == 1
    assert send.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_without_a_key_an_unexpected_error_on_a_later_item_leaves_the_earlier_ones_committed(
    agent_api, make_task, bug_on
):
    tasks = [make_task() for _ in range(4)]
    bug_on(tasks[2])
    response = agent_api.post(BULK, transition_body(tasks), format="json")
    assert_envelope(response, 500, "INTERNAL_ERROR")
    # Items 1 and 2 had committed; item 3 rolled back alone; item 4 was never tried.
    assert states(tasks) == ["in_progress", "in_progress", "new", "new"]
    assert OutboxEvent.objects.filter(event_type="TaskStateChanged").count() == 2


@pytest.mark.django_db(transaction=True)
def test_with_a_key_an_unexpected_error_rolls_everything_back_and_the_retry_runs_then_replays(
    agent_api, make_task, bug_on
):
    tasks = [make_task() for _ in range(4)]
    body = transition_body(tasks)
    bug_on(tasks[2])
    assert_envelope(
        agent_api.post(BULK, body, format="json", HTTP_IDEMPOTENCY_KEY="b-1"), 500, "INTERNAL_ERROR"
    )
    assert states(tasks) == ["new"] * 4
    assert not OutboxEvent.objects.filter(event_type="TaskStateChanged").exists()
    assert not IdempotencyKey.objects.filter(key="b-1").exists()

    bug_on(None)  # mended: the retry with the same key runs (nothing was recorded) ...
    retried = agent_api.post(BULK, body, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert retried.status_code == 200, retried.content[:300]
    assert "Idempotent-Replayed" not in retried
    assert retried.json()["counts"] == {"total": 4, "succeeded": 4, "failed": 0}
    # ... and the next one replays it.
    again = agent_api.post(BULK, body, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert (again.json(), again["Idempotent-Replayed"]) == (retried.json(), "true")
    assert states(tasks) == ["in_progress"] * 4
    assert OutboxEvent.objects.filter(event_type="TaskStateChanged").count() == 4


def test_a_dry_run_with_a_key_records_nothing_and_the_real_run_with_that_key_runs(agent_api, make_task):
    tasks = [make_task(), make_task()]
    dry = agent_api.post(
        BULK, transition_body(tasks, dry_run=True), format="json", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    assert dry.status_code == 200
    assert dry.json()["counts"]["succeeded"] == 2
    assert not IdempotencyKey.objects.exists()
    assert states(tasks) == ["new", "new"]

    real = agent_api.post(BULK, transition_body(tasks), format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert real.status_code == 200, real.content[:300]  # not 409 IDEMPOTENCY_KEY_REUSED, not a replay
    assert "Idempotent-Replayed" not in real
    assert real.json()["dry_run"] is False
    assert states(tasks) == ["in_progress", "in_progress"]
    assert IdempotencyKey.objects.filter(key="d-1").count() == 1
