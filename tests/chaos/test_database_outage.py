"""Chaos: PostgreSQL goes away under a stream of API writes, against real gunicorn and Celery processes.

The web and the worker reach the database through a TCP proxy the test cuts (open connections aborted, new
ones refused) and restores. During the outage every answer is ``503 SERVICE_UNAVAILABLE`` with
``Retry-After`` (never a 500); every 2xx is in the database afterwards; the same web and worker processes
carry on once it is back, and every committed event is dispatched exactly once.

A transition whose response is dropped on the way (the client hangs up) and retried with the same
``Idempotency-Key`` gives one event and the same body on every retry.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
from django.db import connection

from outbox.models import OutboxEvent
from outbox.tasks import outbox_dispatch_task
from polaris.celery import app as celery_app
from tests.factories import AgencyFactory, AgentFactory, ClientFactory
from tests.outbox.workers import dispatch_env, free_port, worker
from tests.support import effect_probe as effects
from tests.support.processes import children_of, gunicorn_process, wait_until
from tests.support.tcp_proxy import cuttable_proxy
from workflow.models import Task

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-Polaris-123"
WRITERS = 3
OUTAGE_SECONDS = 2.5


@dataclass
class Answer:
    started: float
    ended: float
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    body: dict


def proxied_database_url(port: int) -> str:
    params = connection.get_connection_params()
    return (
        f"postgresql://{params.get('user') or 'postgres'}@127.0.0.1:{port}/{connection.settings_dict['NAME']}"
    )


def upstream() -> dict:
    params = connection.get_connection_params()
    host, port = params.get("host") or "", params.get("port") or 5432
    if host.startswith("/"):
        return {"unix_path": f"{host}/.s.PGSQL.{port}"}
    return {"host": host or "127.0.0.1", "port": int(port)}


@pytest.fixture
def stack(effect_table):
    """gunicorn (2 workers) and a Celery worker, both on the database through a cuttable proxy."""
    celery_app.control.purge()
    agency = AgencyFactory(slug="outage-agency")
    agent = AgentFactory(agency=agency)
    client_user = ClientFactory(agency=agency)
    with cuttable_proxy(**upstream()) as proxy:
        overrides = {
            "DATABASE_URL": proxied_database_url(proxy.port),
            "OUTBOX_LEASE_SECONDS": "2",
            # Persistent connections: the outage breaks them under the processes' feet.
            "DB_CONN_MAX_AGE": "60",
        }
        port = free_port()
        with (
            gunicorn_process(port=port, env=dispatch_env(**overrides)) as web,
            worker("outage", **overrides) as celery_worker,
        ):
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=10) as http:
                tokens = http.post(
                    "/api/auth/token/", json={"username": agent.username, "password": PASSWORD}
                )
                assert tokens.status_code == 200, tokens.text
                http.headers["Authorization"] = f"Bearer {tokens.json()['access']}"
                yield {
                    "proxy": proxy,
                    "web": web,
                    "worker": celery_worker,
                    "http": http,
                    "client": client_user,
                    "agent": agent,
                }


def write_stream(http: httpx.Client, client_id: int, answers: list[Answer], stop: threading.Event) -> None:
    with httpx.Client(base_url=http.base_url, headers=http.headers, timeout=10) as own:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = own.post(
                    "/api/workflow/tasks",
                    json={"title": "Intake", "task_type": "intake", "client": client_id},
                )
                answer = Answer(
                    started,
                    time.monotonic(),
                    response.status_code,
                    response.headers.get("Retry-After"),
                    response.json(),
                )
            except httpx.HTTPError:
                answer = Answer(started, time.monotonic(), 0, None, {})
            answers.append(answer)
            time.sleep(0.02)


def successes_after(answers: list[Answer], moment: float) -> int:
    return sum(1 for answer in answers if answer.started > moment and answer.status == 201)


def test_an_outage_is_503_with_retry_after_and_everything_recovers_without_a_restart(stack):
    proxy, http, web = stack["proxy"], stack["http"], stack["web"]
    workers_before = children_of(web.pid)
    answers: list[Answer] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=write_stream, args=(http, stack["client"].pk, answers, stop))
        for _ in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: successes_after(answers, 0) >= 10, timeout=30)
        cut_at = time.monotonic()
        proxy.cut()
        time.sleep(OUTAGE_SECONDS)
        restored_at = time.monotonic()
        proxy.restore()
        wait_until(lambda: successes_after(answers, restored_at) >= 10, timeout=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    statuses = {answer.status for answer in answers}
    assert statuses <= {201, 503}, statuses  # never a 500, never a dropped connection
    during = [answer for answer in answers if answer.started > cut_at and answer.ended < restored_at]
    assert len(during) >= 5, "too few requests during the outage to show anything"
    for answer in during:
        assert answer.status == 503
        assert answer.retry_after == "5"
        assert answer.body["error_code"] == "SERVICE_UNAVAILABLE"
        assert answer.body["details"] == {"retry_after_seconds": 5}
    for answer in answers:
        if answer.status == 503:
            assert (answer.retry_after, answer.body["success"]) == ("5", False)

    # Every 2xx happened.
    created = {answer.body["id"] for answer in answers if answer.status == 201}
    assert Task.objects.filter(pk__in=created).count() == len(created)
    # The same processes carried on: gunicorn's workers were not replaced, the Celery worker lives on.
    assert web.poll() is None
    assert children_of(web.pid) == workers_before
    assert stack["worker"].popen.poll() is None

    # The worker recovered too: every committed event (a 503 may have committed just before its
    # connection broke) is dispatched, each effect once.
    def drained() -> bool:
        outbox_dispatch_task.delay()
        return not OutboxEvent.objects.exclude(status="dispatched").exists()

    wait_until(drained, timeout=60, interval=0.5)
    events = OutboxEvent.objects.count()
    assert effects.effect_counts() == (events, events, 0)


def send_and_hang_up(port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
    """Send a request and close the socket without reading a byte: the response is lost on the way."""
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def test_a_transition_retried_after_its_response_was_lost_makes_one_event_and_answers_the_same(stack):
    http = stack["http"]
    body = {
        "title": "Intake",
        "task_type": "intake",
        "client": stack["client"].pk,
        "assignee": stack["agent"].pk,
    }
    created = http.post("/api/workflow/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    key = str(uuid.uuid4())
    path = f"/api/workflow/tasks/{task_id}/transition"
    headers = {"Authorization": http.headers["Authorization"], "Idempotency-Key": key}
    send_and_hang_up(http.base_url.port, path, b'{"target_state": "in_progress"}', headers)
    wait_until(lambda: Task.objects.get(pk=task_id).state == "in_progress", timeout=10)

    retried = http.post(path, json={"target_state": "in_progress"}, headers={"Idempotency-Key": key})
    again = http.post(path, json={"target_state": "in_progress"}, headers={"Idempotency-Key": key})
    assert retried.status_code == 200, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert again.json() == retried.json()
    events = list(OutboxEvent.objects.filter(aggregate_id=task_id, event_type="TaskStateChanged"))
    assert len(events) == 1
    assert retried.json()["event"]["id"] == str(events[0].pk)
    assert retried.json()["task"]["state"] == "in_progress"
