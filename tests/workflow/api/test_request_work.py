"""A request costs close to its work, beyond its SQL statements (tests/workflow/api/test_request_cost.py):
ORM compilations, JWT decodes and Redis commands per request of the hot endpoints, pinned.

Each is a count that cannot drift with the machine's load: a task read compiles no ORM statement once its
shape is known, a token is decoded once per process, the throttle costs one Redis command.
"""

from datetime import timedelta

import pytest
import redis.connection
import time_machine
from django.db.models.sql.compiler import SQLCompiler
from rest_framework_simplejwt.backends import TokenBackend

from automation import ruleset
from polaris.accounts.models import User
from tests.support.api import assert_envelope, bearer_client
from workflow.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet(settings, monkeypatch):
    settings.OUTBOX_KICK_ON_COMMIT = False
    # Other tests' uncommitted trigger changes (never committed in a test) disable the per-process cache.
    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)
    ruleset._timers_possible.clear()


class Counter:
    """Counts calls of ``owner.name`` while active (the original still runs)."""

    def __init__(self, monkeypatch, owner, name):
        self.calls = 0
        original = getattr(owner, name)

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)


def test_a_task_read_compiles_nothing_once_its_shape_is_known(monkeypatch, agent_api, make_task):
    first, second = make_task(), make_task()
    assert agent_api.get(f"/api/workflow/tasks/{first.pk}").status_code == 200  # compiles the shape
    compiles = Counter(monkeypatch, SQLCompiler, "as_sql")
    response = agent_api.get(f"/api/workflow/tasks/{second.pk}")
    assert response.status_code == 200
    assert response.json()["id"] == str(second.pk)  # the kept statement, this read's values
    assert response.json()["sla"]["status"] == "running"
    assert compiles.calls == 0


def test_a_list_page_compiles_only_its_count(monkeypatch, agent_api, make_task):
    for _ in range(3):
        make_task()
    assert agent_api.get("/api/workflow/tasks", {"page_size": 2}).status_code == 200
    compiles = Counter(monkeypatch, SQLCompiler, "as_sql")
    response = agent_api.get("/api/workflow/tasks", {"page_size": 2})
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert compiles.calls == 1  # the count's rows (its estimate key and the bounded count share it)


def test_kept_statements_keep_scope_filters_and_values_apart(
    agent_api, other_agent_api, client_api, make_task
):
    mine = make_task()
    started = make_task()
    assert (
        agent_api.post(
            f"/api/workflow/tasks/{started.pk}/transition", {"target_state": "in_progress"}, format="json"
        ).status_code
        == 200
    )
    for _ in range(2):  # the second round runs the kept statements
        assert other_agent_api.get(f"/api/workflow/tasks/{mine.pk}").status_code == 404
        assert {t["id"] for t in other_agent_api.get("/api/workflow/tasks").json()["results"]} == set()
        assert client_api.get(f"/api/workflow/tasks/{mine.pk}").json()["id"] == str(mine.pk)
        new = agent_api.get("/api/workflow/tasks", {"state": "new"}).json()["results"]
        assert [t["id"] for t in new] == [str(mine.pk)]
        moving = agent_api.get("/api/workflow/tasks", {"state": "in_progress"}).json()["results"]
        assert [t["id"] for t in moving] == [str(started.pk)]
        by_priority = agent_api.get("/api/workflow/tasks", {"ordering": "priority"}).json()["results"]
        assert len(by_priority) == 2  # an annotated order: left to the ORM
    assert Task.objects.count() == 2


def test_a_token_is_decoded_once_per_process(monkeypatch, agent, make_task):
    task = make_task()
    api = bearer_client(agent)
    assert api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    decodes = Counter(monkeypatch, TokenBackend, "decode")
    for _ in range(3):
        assert api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    assert decodes.calls == 0


def test_a_kept_token_still_expires_and_is_still_revoked(agent, make_task):
    task = make_task()
    api = bearer_client(agent)
    assert api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200  # kept
    with time_machine.travel(timedelta(minutes=16)):  # past the 15-minute lifetime
        assert_envelope(api.get(f"/api/workflow/tasks/{task.pk}"), 401, "NOT_AUTHENTICATED")
    assert api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    User.objects.filter(pk=agent.pk).update(token_version=agent.token_version + 1)
    assert api.get(f"/api/workflow/tasks/{task.pk}").status_code == 401  # the user row is read every time


def test_a_read_and_a_list_page_cost_one_redis_command(monkeypatch, agent_api, make_task):
    task = make_task()
    assert agent_api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    commands = Counter(monkeypatch, redis.connection.AbstractConnection, "send_packed_command")
    assert agent_api.get(f"/api/workflow/tasks/{task.pk}").status_code == 200
    assert commands.calls == 1  # the throttle's count (one EVALSHA)
    assert agent_api.get("/api/workflow/tasks").status_code == 200
    assert commands.calls == 2
