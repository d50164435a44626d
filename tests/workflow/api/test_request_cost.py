"""A request costs close to its work: the database round trips of the hot endpoints over HTTP, pinned.

Inside a test's transaction the request's BEGIN/COMMIT are savepoints; they are counted apart. Without a
timed trigger no task can have a timer, so no timers query runs; the SLA config's name comes from a
per-process cache after its first read.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation import ruleset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_kick(settings):
    settings.OUTBOX_KICK_ON_COMMIT = False


@pytest.fixture
def fresh_trigger_cache(monkeypatch):
    # Other tests' uncommitted trigger changes (never committed in a test) disable the per-process cache.
    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)
    ruleset._timers_possible.clear()


def statements(captured) -> tuple[list[str], list[str]]:
    sqls = [query["sql"] for query in captured.captured_queries]
    savepoints = [sql for sql in sqls if sql.split()[0] in ("SAVEPOINT", "RELEASE", "ROLLBACK")]
    return [sql for sql in sqls if sql not in savepoints], savepoints


def test_a_transition_is_three_statements_in_one_transaction(fresh_trigger_cache, agent_api, make_task):
    task, warm = make_task(), make_task()
    agent_api.post(
        f"/api/workflow/tasks/{warm.pk}/transition", {"target_state": "in_progress"}, format="json"
    )
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.post(
            f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "in_progress"}, format="json"
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["task"]["sla"]["config_name"]  # the SLA block is still there
    assert body["task"]["timers"] == []
    work, savepoints = statements(captured)
    # The caller (JWT → user row), the task read, the compare-and-swap write with its event and SLA lock.
    assert len(work) == 3, work
    assert '"accounts_user"' in work[0]
    assert work[2].startswith("WITH updated AS (UPDATE")
    # The request's transaction (a savepoint pair inside the test's), and no savepoint of the service's
    # own inside it (idempotent_response(single_write=True)).
    assert len(savepoints) == 2, savepoints


def test_a_task_read_is_two_statements(fresh_trigger_cache, agent_api, make_task):
    task = make_task()
    agent_api.get(f"/api/workflow/tasks/{task.pk}")
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get(f"/api/workflow/tasks/{task.pk}")
    assert response.status_code == 200
    assert response.json()["sla"]["status"] == "running"
    work, savepoints = statements(captured)
    assert len(work) == 2, work  # the caller, the task with its SLA record and config (one join)
    assert not savepoints


def test_a_list_page_is_two_statements_and_a_count_when_there_is_more(
    fresh_trigger_cache, agent_api, make_task
):
    for _ in range(3):
        make_task()
    agent_api.get("/api/workflow/tasks", {"page_size": 20})
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get("/api/workflow/tasks", {"page_size": 20})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3
    work, _ = statements(captured)
    # The caller, the page (records and configs joined); everything fits on it, so nothing to count.
    assert len(work) == 2, "\n".join(sql[:300] for sql in work)
    assert 'ORDER BY "workflow_task"."created_at" DESC, "workflow_task"."id" ASC LIMIT 21' in work[1]
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get("/api/workflow/tasks", {"page_size": 2})
    assert response.json()["count"] == 3
    work, _ = statements(captured)
    assert len(work) == 3, "\n".join(sql[:300] for sql in work)  # and the (bounded) count


def test_with_a_timed_trigger_timers_are_read_again(fresh_trigger_cache, agent_api, make_task, admin_user):
    from automation.models import Trigger

    task = make_task()
    Trigger.objects.create(name="Nudge", event_type="TaskCreated", wait_minutes=60, actions=[])
    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get(f"/api/workflow/tasks/{task.pk}")
    assert response.status_code == 200
    assert any('"automation_triggertimer"' in query["sql"] for query in captured.captured_queries)


def test_a_refused_write_without_the_service_savepoint_changes_nothing(agent_api, make_task):
    task = make_task(assignee=None)
    refused = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition",
        {"target_state": "in_progress"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert refused.status_code == 400, refused.json()
    assert refused.json()["error_code"] == "GUARD_FAILED"
    # The request's transaction rolled back whole; the connection serves the next request.
    task.refresh_from_db()
    assert (task.state, task.version) == ("new", 1)
    edited = agent_api.patch(f"/api/workflow/tasks/{task.pk}", {"title": "Renamed"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["version"] == 2
    with CaptureQueriesContext(connection) as captured:
        again = agent_api.patch(f"/api/workflow/tasks/{task.pk}", {"title": "Again"}, format="json")
    assert again.status_code == 200
    _, savepoints = statements(captured)
    assert len(savepoints) == 2, savepoints  # an edit too runs in one transaction without a savepoint
