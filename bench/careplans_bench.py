"""Care plans: instantiating a template, readiness through dispatch, and a migration preview.

1. ``POST /api/workflow/action-plans`` with a 20-task template (gunicorn, JWT, one connection): p50 of the
   request, beside the same plan built as today — ``POST /action-plans`` then 20 ``POST /tasks`` — measured
   in the same run. Targets: p50 <= 30 ms; >= 5x faster than the 20 single creations.
2. Readiness: a predecessor's completion commits; a real Celery worker, woken by the after-commit kick,
   dispatches it and the dependent becomes ready (``waiting_on`` empty, polled every millisecond). Target: p50
   <= 50 ms. Baseline beside it: the same completion's commit-to-dispatched time for a task nobody waits for
   (the kick and the worker alone).
3. A migration preview over 10,000 running plans (5 tasks each, seeded set-based) through the service.
   Target: <= 10 s. Beside it: the preview over a tenth of them (how it scales).

Runs on a scratch database (``polaris_careplans_bench``, dropped at the end).

    DATABASE_URL=... REDIS_URL=... python bench/careplans_bench.py [--quick] [--keep-db]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from api_bench import PASSWORD, _free_port, _obtain_token, _start_gunicorn, _stop
from processes import celery_start, process_stop
from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_careplans_bench"
TASKS = 20


def _blueprints() -> list[dict]:
    """20 tasks: 4 roots, then layers each waiting for two tasks of the layer before."""
    items = []
    for n in range(TASKS):
        depends = [] if n < 4 else [f"t{n - 4}", f"t{n - 3 if n % 4 else n - 1}"]
        items.append(
            {
                "key": f"t{n}",
                "title": f"Step {n}",
                "task_type": f"step-{n}",
                "due_in_business_hours": 8,
                "depends_on": sorted(set(depends)),
            }
        )
    return items


def _setup() -> tuple:
    from polaris.accounts.services import agency_get_or_create, user_upsert

    agency = agency_get_or_create(name="Care plans bench")
    agent, _ = user_upsert(username="bench-api-agent", password=PASSWORD, role="agency", agency=agency)
    supervisor, _ = user_upsert(username="bench-supervisor", password="x", role="supervisor", agency=agency)
    client, _ = user_upsert(username="bench-api-client", password="x", role="client", agency=agency)
    return agency, agent, supervisor, client


def _post(connection: http.client.HTTPConnection, path: str, body: dict, headers: dict) -> dict:
    connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read())
    if response.status != 201:
        raise RuntimeError(f"{path}: {response.status} {payload}")
    return payload


def _instantiation(base: str, token: str, template_id: int, client_id: int, rounds: int) -> tuple:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    plans = "/api/workflow/action-plans"
    templated, by_hand = [], []
    for index in range(rounds + 3):  # the first three warm up
        started = time.perf_counter()
        _post(connection, plans, {"client": client_id, "template": template_id}, headers)
        one = time.perf_counter() - started
        started = time.perf_counter()
        plan = _post(connection, plans, {"client": client_id, "title": "By hand"}, headers)
        for n in range(TASKS):
            task = {
                "title": f"Step {n}",
                "task_type": f"step-{n}",
                "client": client_id,
                "action_plan": plan["id"],
            }
            _post(connection, "/api/workflow/tasks", task, headers)
        many = time.perf_counter() - started
        if index >= 3:
            templated.append(one)
            by_hand.append(many)
    connection.close()
    return templated, by_hand


def _wait(predicate, timeout: float = 10.0) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.001)
    raise RuntimeError("timed out waiting for the worker")


def _waiting_on(task_id) -> list:
    from workflow.models import Task

    return Task.objects.filter(pk=task_id).values_list("waiting_on", flat=True)[0]


def _readiness(agent, client, agency, template_id: int, rounds: int) -> tuple[list[float], list[float]]:
    from django.db import connection

    from careplans.models import TemplatedTask
    from careplans.services.instantiation import plan_instantiate
    from outbox.models import HandledEvent
    from workflow.models import Task
    from workflow.services.tasks import task_assign, task_create, task_transition

    ready, dispatched = [], []
    for index in range(rounds + 3):
        plan = plan_instantiate(actor=agent, template_id=template_id, client=client, agency=agency)
        keys = {link.key: link.task_id for link in TemplatedTask.objects.filter(plan=plan)}
        dependent = keys["t4"]  # waits for two roots
        first, last = Task.objects.get(pk=dependent).waiting_on
        for task_id in (first, last):
            task_assign(task_id=task_id, actor=agent, assignee=agent)
            task_transition(task_id=task_id, target_state="in_progress", actor=agent)
        task_transition(task_id=first, target_state="completed", actor=agent)
        _wait(lambda dependent=dependent: len(_waiting_on(dependent)) == 1)
        # The measured commit: the last predecessor of t4.
        task_transition(task_id=last, target_state="completed", actor=agent)
        committed = time.perf_counter()  # autocommit: the service's transaction has committed
        done = _wait(lambda dependent=dependent: not _waiting_on(dependent))
        # Baseline: a completion nobody waits for (a task outside any template): kick → handled.
        other = task_create(
            actor=agent, title="Plain", task_type="plain", client=client, agency=agency, assignee=agent
        ).pk
        task_transition(task_id=other, target_state="in_progress", actor=agent)
        _, plain = task_transition(task_id=other, target_state="completed", actor=agent)
        plain_committed = time.perf_counter()
        plain_done = _wait(
            lambda plain=plain: HandledEvent.objects.filter(
                event_id=plain.pk, handler="careplans.readiness"
            ).exists()
        )
        if index >= 3:
            ready.append(done - committed)
            dispatched.append(plain_done - plain_committed)
        connection.close()
    return ready, dispatched


def _seed_running_plans(count: int, agency, client, version) -> None:
    """``count`` active plans on ``version``, 5 tasks each, set-based (no events: a preview reads none)."""
    from django.utils import timezone

    from careplans.models import TemplatedPlan, TemplatedTask
    from workflow.models import ActionPlan, Task

    now = timezone.now()
    batch = 1000
    for start in range(0, count, batch):
        plans = [
            ActionPlan(title="Seeded", client=client, agency=agency, state="active")
            for _ in range(min(batch, count - start))
        ]
        ActionPlan.objects.bulk_create(plans)
        TemplatedPlan.objects.bulk_create(TemplatedPlan(plan=plan, version=version) for plan in plans)
        tasks, links = [], []
        for plan in plans:
            for n in range(5):
                task = Task(
                    id=uuid.uuid4(),
                    title=f"Step {n}",
                    task_type=f"step-{n}",
                    client=client,
                    agency=agency,
                    action_plan=plan,
                    state="completed" if n == 0 else "new",
                    due_at=now if n < 4 else None,
                )
                tasks.append(task)
                links.append(
                    TemplatedTask(task_id=task.pk, plan=plan, key=f"t{n}", ready_at=now if n < 4 else None)
                )
        Task.objects.bulk_create(tasks, batch_size=1000)
        TemplatedTask.objects.bulk_create(links, batch_size=1000)


def _preview(count: int, supervisor, agency, client) -> tuple[float, float, int]:
    from careplans.services.plan_migrations import migration_preview
    from careplans.services.templates import plan_template_create, plan_template_version_create

    five = [*_blueprints()[:4], {**_blueprints()[4], "depends_on": ["t0", "t1"]}]
    template = plan_template_create(actor=supervisor, agency=agency, name="Preview", blueprints=five)
    v2 = [{**item, "due_in_business_hours": 16} for item in five[:3]] + [
        {"key": "t9", "title": "New step", "task_type": "step-9", "depends_on": ["t0"]}
    ]
    plan_template_version_create(actor=supervisor, template_id=template.pk, blueprints=v2)
    _seed_running_plans(count, agency, client, template.versions.get(number=1))
    tenth = {"plan_ids": None}
    from careplans.models import TemplatedPlan

    some = list(
        TemplatedPlan.objects.filter(version__template=template).values_list("plan_id", flat=True)[
            : count // 10
        ]
    )
    tenth = {"plan_ids": [str(pk) for pk in some]}
    started = time.perf_counter()
    small = migration_preview(template=template, from_version=1, to_version=2, plan_filter=tenth)
    small_seconds = time.perf_counter() - started
    started = time.perf_counter()
    changes = migration_preview(template=template, from_version=1, to_version=2, plan_filter={})
    seconds = time.perf_counter() - started
    assert len(small) == len(some)
    return seconds, small_seconds, len(changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 1,000 plans for the preview")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else 40
    preview_plans = 1_000 if args.quick else 10_000
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it up)", file=sys.stderr)
        return 2
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["OUTBOX_KICK_ON_COMMIT"] = "true"
    server = worker = None
    log_dir = Path(tempfile.mkdtemp(prefix="polaris-careplans-bench-"))
    try:
        django_setup_and_migrate()
        from careplans.services.templates import plan_template_create
        from polaris.celery import app

        agency, agent, supervisor, client = _setup()
        template = plan_template_create(
            actor=supervisor, agency=agency, name="Twenty", blueprints=_blueprints()
        )
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="polaris-careplans-bench-metrics-"),
        }
        port = _free_port()
        server = _start_gunicorn(env, port, log_dir / "gunicorn.log", 1)
        base = f"http://127.0.0.1:{port}"
        token = _obtain_token(base, server)
        templated, by_hand = _instantiation(base, token, template.pk, client.pk, rounds)
        _stop(server)
        server = None

        app.control.purge()
        worker = celery_start(
            "worker",
            ["-P", "solo", "-n", "careplans-bench@%h", "--without-gossip", "--without-mingle"],
            env,
            log_dir / "worker.log",
        )
        time.sleep(3)
        ready, dispatched = _readiness(agent, client, agency, template.pk, rounds)
        process_stop(worker)
        worker = None

        preview_seconds, tenth_seconds, previewed = _preview(preview_plans, supervisor, agency, client)
    finally:
        if server is not None:
            _stop(server)
        if worker is not None:
            process_stop(worker)
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    ms = 1000
    p50_one, p50_many = statistics.median(templated), statistics.median(by_hand)
    speedup = p50_many / p50_one
    print(
        f"== Instantiation: a {TASKS}-task template in one request vs a plan and {TASKS} task requests, "
        f"gunicorn, JWT, one connection, {rounds} rounds =="
    )
    p90_one = sorted(templated)[int(0.9 * len(templated))]
    print(
        f"template p50 {p50_one * ms:6.1f} ms (p90 {p90_one * ms:.1f})   "
        f"by hand p50 {p50_many * ms:6.1f} ms   speed-up {speedup:.1f}x   "
        f"(targets: p50 <= 30 ms, >= 5x)"
    )
    p50_ready, p50_dispatch = statistics.median(ready), statistics.median(dispatched)
    print(
        "== Readiness: completion commit -> dependent ready, a real worker woken by the kick, "
        f"{rounds} rounds =="
    )
    print(
        f"ready p50 {p50_ready * ms:6.1f} ms (p90 {sorted(ready)[int(0.9 * len(ready))] * ms:.1f})   "
        f"baseline (commit -> handled, nobody waiting) p50 {p50_dispatch * ms:6.1f} ms   "
        f"ratio {p50_ready / p50_dispatch:.2f}   (target: p50 <= 50 ms)"
    )
    print(f"== Migration preview over {previewed} running plans (5 tasks each) ==")
    print(
        f"preview {preview_seconds:6.2f} s   a tenth of them {tenth_seconds:6.2f} s   "
        f"ratio {preview_seconds / max(tenth_seconds, 1e-9):.1f}   (target: <= 10 s for 10,000)"
    )
    met = p50_one <= 0.030 and speedup >= 5 and p50_ready <= 0.050 and preview_seconds <= 10
    print(f"targets: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
