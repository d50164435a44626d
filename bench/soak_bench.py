"""Whole-system soak: gunicorn, two Celery workers and beat on the embedded stack under an open-loop mix.

    make bench ARGS=soak                    # 10 minutes
    make bench ARGS="soak --minutes 3"      # a shorter look (--quick: 3 minutes)

The load is a fixed arrival rate of *stories* (``--rate`` per second), each a few API requests at fixed
offsets from its planned start, sent by a pool of connections at their intended times (latency counts
from then, so a stall is charged to the requests it held back):

- intake (5 in 8): create an intake task, start it, edit it (``PATCH`` of its description), assign it
  to a second agent (``POST …/assign``), complete it. Effects: a webhook delivery of the start event to a
  local receiver (a trigger made for the soak, ``WEBHOOK_ALLOWED_HOSTS=127.0.0.1``) and an assessment
  task from the built-in trigger; the edit and the assignment must be on the task at the end.
- sla (2 in 8): a task under a 1-minute SLA config; every other one is started and completed at once
  (met), the rest are left open and must breach once (``SLABreached``), found by beat's scan (5 s here).
- plan (1 in 8): create an action plan and a task in it, activate it: the built-in trigger's alert.

Every event also reaches the effect probe (``tests.support.effect_probe``, loaded in the workers through
``OUTBOX_EXTRA_HANDLER_MODULES``), which is how commit → effect lag is read: effect time minus the
event's ``occurred_at`` (stamped inside the writing transaction, so slightly before its commit). A scraper
reads ``/metrics`` every 10 s. Printed per minute: stories and requests done, errors, request p99,
commit → effect p99, outbox backlog, RSS of every process, PostgreSQL connections. At the end, after
the backlog drains and the last open SLA tasks are due, every effect is checked against the load: each
successful request implies exactly one event of its type on its task or plan (created, state changed,
updated, assigned, plan created/activated), each event one probe effect, and the triggers' effects.

Targets: 0 errors; 0 lost and 0 duplicated effects; backlog and every RSS flat (last minute <= 1.2x the
second); p99 lag in the last minute <= 3x the first. Scratch database ``polaris_soak_bench``. Never in CI.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import http.server
import itertools
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from api_bench import PASSWORD, _free_port, _obtain_token, _percentile, _start_gunicorn
from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_soak_bench"
POOL = 24  # load connections
SLA_TASK_TYPE = "soak-sla"
SCAN_SECONDS = 5
PATTERN = ["intake", "intake", "sla", "intake", "plan", "intake", "sla", "intake"]


# --- the webhook receiver ---------------------------------------------------------------------------


class Receiver:
    """A local HTTP endpoint counting deliveries per event id."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event_id = self.headers.get("X-Polaris-Event-Id")
                if not event_id:
                    try:
                        envelope = json.loads(body)
                        event_id = envelope.get("id") or (envelope.get("data") or {}).get("id")
                    except ValueError:
                        event_id = None
                with receiver.lock:
                    receiver.counts[str(event_id or self.headers.get("webhook-id"))] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the open-loop load -----------------------------------------------------------------------------


class Load:
    """Stories arriving at a fixed rate; each step runs at its planned time on a pool of connections."""

    def __init__(self, *, port: int, token: str, ids: dict, rate: float, seconds: float) -> None:
        self.port, self.token, self.ids = port, token, ids
        self.rate, self.seconds = rate, seconds
        self.heap: list = []
        self.cond = threading.Condition()
        self.seq = itertools.count()
        self.lock = threading.Lock()
        self.done: list[tuple[float, str, float, bool]] = []  # (finished at, step, latency, ok)
        self.error_samples: list[str] = []
        self.expected: dict[str, list] = defaultdict(list)
        self.implied: Counter = (
            Counter()
        )  # (aggregate id, event type) -> events the successful requests imply
        self.outstanding = 0
        self.start = time.time() + 1.0
        for n in range(int(rate * seconds)):
            self._push(self.start + n / rate, PATTERN[n % len(PATTERN)], {"n": n})
        self.threads = [threading.Thread(target=self._sender, daemon=True) for _ in range(POOL)]

    def _push(self, due: float, step: str, story: dict) -> None:
        with self.cond:
            heapq.heappush(self.heap, (due, next(self.seq), step, story))
            self.outstanding += 1
            self.cond.notify()

    def run(self) -> None:
        for thread in self.threads:
            thread.start()

    def finished(self) -> bool:
        with self.cond:
            return self.outstanding == 0

    def _sender(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while True:
            with self.cond:
                while not self.heap or self.heap[0][0] > time.time():
                    if not self.heap and self.outstanding == 0:
                        return
                    self.cond.wait(timeout=(self.heap[0][0] - time.time()) if self.heap else 0.5)
                due, _, step, story = heapq.heappop(self.heap)
            try:
                ok, follow = getattr(self, f"_step_{step}")(connection, story)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                connection.close()
                ok, follow = False, []
                self._error(f"{step}: {exc!r}")
            finished = time.time()
            with self.lock:
                self.done.append((finished, step, finished - due, ok))
            for offset, next_step in follow:
                self._push(story["start"] + offset, next_step, story)
            with self.cond:
                self.outstanding -= 1
                self.cond.notify_all()

    def _error(self, text: str) -> None:
        with self.lock:
            if len(self.error_samples) < 10:
                self.error_samples.append(text)

    def _call(self, connection, method: str, path: str, body: dict | None, expect: int = 200, event=None):
        """One request; ``event`` = (event type, key of the aggregate id in the response) it implies."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        connection.request(method, path, body=json.dumps(body).encode() if body else None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != expect:
            self._error(f"{method} {path} -> {response.status} {payload[:200]!r}")
            return None
        answer = json.loads(payload)
        if event:
            event_type, key = event
            aggregate = answer[key]["id"] if isinstance(answer[key], dict) else answer[key]
            with self.lock:
                self.implied[(str(aggregate), event_type)] += 1
        return answer

    def _task_create(self, connection, title: str, task_type: str, plan: str | None = None):
        body = {
            "title": title,
            "task_type": task_type,
            "client": self.ids["client"],
            "assignee": self.ids["agent"],
        }
        if plan:
            body["action_plan"] = plan
        return self._call(
            connection, "POST", "/api/workflow/tasks", body, expect=201, event=("TaskCreated", "id")
        )

    def _move(self, connection, story: dict, target: str):
        path = f"/api/workflow/tasks/{story['task']}/transition"
        moved = self._call(
            connection, "POST", path, {"target_state": target}, event=("TaskStateChanged", "task")
        )
        return moved

    # Each step returns (ok, [(offset from the story's planned start, next step), ...]).

    def _step_intake(self, connection, story):
        story["start"], story["title"] = self.start + story["n"] / self.rate, f"Soak intake {story['n']}"
        task = self._task_create(connection, story["title"], "intake")
        if task is None:
            return False, []
        story["task"] = task["id"]
        return True, [(2.0, "intake_start")]

    def _step_intake_start(self, connection, story):
        moved = self._move(connection, story, "in_progress")
        if moved is None:
            return False, []
        with self.lock:
            self.expected["webhook"].append(moved["event"]["id"])
        return True, [(3.0, "intake_edit")]

    def _step_intake_edit(self, connection, story):
        path = f"/api/workflow/tasks/{story['task']}"
        body = {"description": f"edited in the soak, story {story['n']}"}
        edited = self._call(connection, "PATCH", path, body, event=("TaskUpdated", "id"))
        if edited is None:
            return False, []
        with self.lock:
            self.expected["edited"].append((story["task"], body["description"]))
        return True, [(4.0, "intake_assign")]

    def _step_intake_assign(self, connection, story):
        path = f"/api/workflow/tasks/{story['task']}/assign"
        body = {"assignee": self.ids["agent2"]}
        if self._call(connection, "POST", path, body, event=("TaskAssigned", "id")) is None:
            return False, []
        with self.lock:
            self.expected["assigned"].append(story["task"])
        return True, [(5.0, "intake_complete")]

    def _step_intake_complete(self, connection, story):
        if self._move(connection, story, "completed") is None:
            return False, []
        with self.lock:
            self.expected["assessment"].append(f"Assessment: {story['title']}")
        return True, []

    def _step_sla(self, connection, story):
        story["start"] = self.start + story["n"] / self.rate
        task = self._task_create(connection, f"Soak sla {story['n']}", SLA_TASK_TYPE)
        if task is None:
            return False, []
        story["task"] = task["id"]
        if (story["n"] // 4) % 2:  # sla stories are every 4th: alternately left open and closed
            with self.lock:
                self.expected["breach"].append((task["id"], time.time()))
            return True, []
        return True, [(1.0, "sla_start")]

    def _step_sla_start(self, connection, story):
        return self._move(connection, story, "in_progress") is not None, [(2.0, "sla_complete")]

    def _step_sla_complete(self, connection, story):
        if self._move(connection, story, "completed") is None:
            return False, []
        with self.lock:
            self.expected["met"].append(story["task"])
        return True, []

    def _step_plan(self, connection, story):
        story["start"], story["title"] = self.start + story["n"] / self.rate, f"Soak plan {story['n']}"
        body = {"title": story["title"], "client": self.ids["client"]}
        plan = self._call(
            connection,
            "POST",
            "/api/workflow/action-plans",
            body,
            expect=201,
            event=("ActionPlanCreated", "id"),
        )
        if plan is None:
            return False, []
        story["plan"] = plan["id"]
        return True, [(1.0, "plan_task")]

    def _step_plan_task(self, connection, story):
        task = self._task_create(connection, f"{story['title']} task", "soak-plan", plan=story["plan"])
        return task is not None, [(2.0, "plan_activate")] if task else []

    def _step_plan_activate(self, connection, story):
        path = f"/api/workflow/action-plans/{story['plan']}/activate"
        if self._call(connection, "POST", path, {}, event=("ActionPlanActivated", "action_plan")) is None:
            return False, []
        with self.lock:
            self.expected["alert"].append(f"Action plan activated: {story['title']}")
        return True, []


class Scraper:
    """GETs ``/metrics`` every ``interval`` seconds; counts failures."""

    def __init__(self, port: int, interval: float = 10.0) -> None:
        self.port, self.interval = port, interval
        self.ok = self.failed = 0
        self.seconds: list[float] = []
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            began = time.perf_counter()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                body = response.read()
                connection.close()
                good = response.status == 200 and b"polaris_" in body
            except (OSError, http.client.HTTPException):
                good = False
            self.seconds.append(time.perf_counter() - began)
            self.ok += good
            self.failed += not good


# --- the processes under test -----------------------------------------------------------------------


def _celery(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    celery = str(Path(sys.executable).parent / "celery")
    return subprocess.Popen(
        [celery, "-A", "polaris", *args, "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rss(processes: dict[str, subprocess.Popen]) -> dict[str, float]:
    """RSS in MB of each process we started and its children (gunicorn workers, Celery pool children),
    of this load process, of Redis, and the unique memory (USS) of PostgreSQL's processes summed."""
    import psutil

    out: dict[str, float] = {}
    for name, popen in processes.items():
        try:
            parent = psutil.Process(popen.pid)
            out[name] = parent.memory_info().rss / 2**20
            for index, child in enumerate(sorted(parent.children(recursive=True), key=lambda c: c.pid), 1):
                out[f"{name}.{index}"] = child.memory_info().rss / 2**20
        except psutil.Error:
            out[name] = float("nan")
    out["load"] = psutil.Process().memory_info().rss / 2**20
    redis_port = os.environ.get("REDIS_URL", "").rsplit(":", 1)[-1].split("/")[0]
    pgdata = os.environ.get("DATABASE_URL", "").partition("host=")[2]
    postgres = 0.0
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if "redis-server" in (process.info["name"] or "") and f":{redis_port}" in cmdline:
                out["redis"] = process.memory_info().rss / 2**20
            elif (
                pgdata
                and (process.info["name"] or "").startswith("postgres")
                and (pgdata in cmdline or pgdata in " ".join((process.parent() or process).cmdline()))
            ):
                postgres += process.memory_full_info().uss / 2**20
        except psutil.Error:
            continue
    out["postgres(uss)"] = postgres
    return out


def _sample(since: float, until: float) -> dict:
    """Backlog, connections and the commit → effect p99 of events that occurred in [since, until)."""
    from django.db import connection

    from tests.support.effect_probe import EFFECT_TABLE

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM outbox_outboxevent WHERE status IN ('pending', 'processing')")
        backlog = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        connections = cursor.fetchone()[0]
        cursor.execute(
            "SELECT percentile_cont(0.99) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM p.first - e.occurred_at)), "
            "count(*) FROM outbox_outboxevent e JOIN (SELECT event_id, min(created_at) AS first "
            f"FROM {EFFECT_TABLE} GROUP BY event_id) p ON p.event_id = e.id "
            "WHERE e.occurred_at >= to_timestamp(%s) AND e.occurred_at < to_timestamp(%s)",
            [since, until],
        )
        lag, events = cursor.fetchone()
    return {"backlog": backlog, "connections": connections, "lag_p99": float(lag or 0), "events": events}


# --- the end-of-run checks --------------------------------------------------------------------------


def _checks(load: Load, receiver: Receiver, since: float) -> list[tuple[str, int, int, int]]:
    """(what, expected, lost, duplicated) for every kind of effect."""
    from django.db import connection
    from django.db.models import Count

    from automation.models import Alert
    from outbox.models import OutboxEvent
    from tests.support.effect_probe import EFFECT_TABLE
    from workflow.models import Task

    def uuid_of(text: str):
        return uuid.UUID(str(text))

    def compare(what: str, expected: list, found: Counter) -> tuple[str, int, int, int]:
        lost = sum(1 for key in expected if found.get(key, 0) == 0)
        duplicated = sum(1 for key in expected if found.get(key, 0) > 1)
        return (what, len(expected), lost, duplicated)

    rows = []
    # Each successful request's own event, exactly once: missing ones are lost, extra ones duplicated.
    aggregates = sorted({aggregate for aggregate, _ in load.implied})
    written = Counter(
        (str(aggregate), event_type)
        for aggregate, event_type in OutboxEvent.objects.filter(
            aggregate_type__in=["task", "action_plan"],
            aggregate_id__in=aggregates,
            event_type__in={event_type for _, event_type in load.implied},
        ).values_list("aggregate_id", "event_type")
    )
    for event_type in sorted({event_type for _, event_type in load.implied}):
        keys = {key for key in load.implied.keys() | written.keys() if key[1] == event_type}
        implied = sum(load.implied[key] for key in keys)
        missing = sum(max(0, load.implied[key] - written[key]) for key in keys)
        extra = sum(max(0, written[key] - load.implied[key]) for key in keys)
        rows.append((f"{event_type} events of the requests", implied, missing, extra))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.id::text, count(p.id) FROM outbox_outboxevent e LEFT JOIN "
            f"{EFFECT_TABLE} p ON p.event_id = e.id WHERE e.occurred_at >= to_timestamp(%s) GROUP BY e.id",
            [since],
        )
        per_event = dict(cursor.fetchall())
    rows.append(compare("every event's probe effect", list(per_event), Counter(per_event)))
    titles = Counter(
        dict(
            Task.objects.filter(task_type="assessment", title__startswith="Assessment: Soak")
            .values_list("title")
            .annotate(n=Count("id"))
        )
    )
    rows.append(compare("assessment tasks (built-in trigger)", load.expected["assessment"], titles))
    alerts = Counter(
        dict(
            Alert.objects.filter(message__startswith="Action plan activated: Soak")
            .values_list("message")
            .annotate(n=Count("id"))
        )
    )
    rows.append(compare("alerts (built-in trigger)", load.expected["alert"], alerts))
    rows.append(compare("webhook deliveries at the receiver", load.expected["webhook"], receiver.counts))
    # An SLA event's aggregate is the SLA record; its payload names the task.
    breaches = Counter(
        OutboxEvent.objects.filter(event_type="SLABreached").values_list("payload__task_id", flat=True)
    )
    rows.append(
        compare("SLA breaches of open tasks", [task for task, _ in load.expected["breach"]], breaches)
    )
    wrongly = sum(1 for task in load.expected["met"] if breaches.get(str(task)))
    rows.append(("no breach of tasks completed in time", len(load.expected["met"]), 0, wrongly))
    # The edits and assignments are on the tasks (a lost write would show here, not as a missing event).
    descriptions = dict(
        Task.objects.filter(pk__in=[task for task, _ in load.expected["edited"]]).values_list(
            "pk", "description"
        )
    )
    unedited = sum(1 for task, text in load.expected["edited"] if descriptions.get(uuid_of(task)) != text)
    rows.append(("edits (PATCH) on the tasks", len(load.expected["edited"]), unedited, 0))
    assignees = dict(Task.objects.filter(pk__in=load.expected["assigned"]).values_list("pk", "assignee_id"))
    unassigned = sum(
        1 for task in load.expected["assigned"] if assignees.get(uuid_of(task)) != load.ids["agent2"]
    )
    rows.append(("assignments on the tasks", len(load.expected["assigned"]), unassigned, 0))
    return rows


# --- the run ----------------------------------------------------------------------------------------


def _setup(receiver_port: int) -> tuple[dict, int]:
    from automation.models import WebhookEndpoint
    from automation.services import trigger_create
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from sla.configs import sla_config_create
    from tests.support import effect_probe

    effect_probe.effect_table_create()
    agency = agency_get_or_create(name="Soak")
    agent, _ = user_upsert(username="bench-api-agent", password=PASSWORD, role="agency", agency=agency)
    agent2, _ = user_upsert(username="bench-soak-agent2", password="x", role="agency", agency=agency)
    client, _ = user_upsert(username="bench-soak-client", password="x", role="client", agency=agency)
    admin, _ = user_upsert(username="bench-soak-admin", password="x", role="admin", agency=None)
    sla_config_create(
        actor=admin,
        name="Soak: breach in a minute",
        task_type=SLA_TASK_TYPE,
        target_minutes=1,
        warning_percentages=[],
    )
    endpoint = WebhookEndpoint.objects.create(
        name="Soak receiver", url=f"http://127.0.0.1:{receiver_port}/hook", secret=secrets.token_hex(16)
    )
    trigger_create(
        name="Soak: intake started → webhook",
        event_type="TaskStateChanged",
        predicate='task_type == "intake" and new_state == "in_progress"',
        actions=[{"type": "webhook", "params": {"endpoint": endpoint.pk}}],
        position=30,
    )
    return {"agent": agent.pk, "agent2": agent2.pk, "client": client.pk}, endpoint.pk


def _row(
    minute: int, load: Load, since: float, until: float, sample: dict, rss: dict, scraper: Scraper
) -> dict:
    with load.lock:
        window = [d for d in load.done if since <= d[0] < until]
    latencies = [d[2] for d in window]
    row = {
        "minute": minute,
        "requests": len(window),
        "errors": sum(1 for d in window if not d[3]),
        "req_p99": _percentile(latencies, 0.99) * 1000 if latencies else 0.0,
        **sample,
        "rss": rss,
    }
    rss_text = " ".join(f"{name} {mb:.0f}" for name, mb in rss.items())
    print(
        f"min {minute:>2}: {row['requests'] / (until - since):5.1f} req/s  errors {row['errors']}  "
        f"req p99 {row['req_p99']:6.0f} ms | lag p99 {row['lag_p99'] * 1000:6.0f} ms ({row['events']} ev) | "
        f"backlog {row['backlog']:>4} | pg conns {row['connections']:>3} | scrapes {scraper.ok} ok "
        f"{scraper.failed} failed | RSS MB: {rss_text}",
        flush=True,
    )
    return row


def _flat(rows: list[dict]) -> list[str]:
    """Every figure that grew: last minute > 1.2x the second."""
    second, last = rows[1], rows[-1]
    grew = []
    if last["backlog"] > max(1.2 * second["backlog"], 50):  # a backlog of a few dozen is one beat's worth
        grew.append(f"backlog {second['backlog']} -> {last['backlog']}")
    for name, mb in last["rss"].items():
        before = second["rss"].get(name)
        if before and mb > 1.2 * before:
            grew.append(f"RSS {name} {before:.0f} -> {mb:.0f} MB")
    return grew


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="load duration (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 minutes")
    parser.add_argument(
        "--rate", type=float, default=2.0, help="stories per second (about 3.4 requests each)"
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    minutes = args.minutes or (3.0 if args.quick else 10.0)
    if minutes < 3:
        print("the flatness checks compare the second and the last minute: use --minutes 3 or more")
        return 2
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (make bench sets it up)", file=sys.stderr)
        return 2
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    log_dir = Path(tempfile.mkdtemp(prefix="polaris-soak-"))
    processes: dict[str, subprocess.Popen] = {}
    failed = True
    try:
        django_setup_and_migrate()
        receiver = Receiver()
        ids, _ = _setup(receiver.port)
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "PROMETHEUS_MULTIPROC_DIR": str(log_dir / "metrics"),
            "METRICS_PUBLIC": "true",  # scraped without a token (DEBUG is off)
            "OUTBOX_EXTRA_HANDLER_MODULES": "bench.worker_handlers",
            "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "SLA_SCAN_INTERVAL_SECONDS": str(SCAN_SECONDS),
            "JWT_ACCESS_MINUTES": str(int(minutes) + 30),
            "PYTHONUNBUFFERED": "1",
        }
        port = _free_port()
        processes["web"] = _start_gunicorn(env, port, log_dir / "gunicorn.log", 1)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per token request
        token = _obtain_token(f"http://127.0.0.1:{port}", processes["web"])
        for index in (1, 2):
            processes[f"worker{index}"] = _celery(
                ["worker", "-c", "1", "-n", f"soak-{index}@%h", "--without-gossip", "--without-mingle"],
                env,
                log_dir / f"worker{index}.log",
            )
        processes["beat"] = _celery(["beat", "-s", str(log_dir / "beat-schedule")], env, log_dir / "beat.log")

        time.sleep(3)  # let the workers and beat connect
        print(
            f"Soak: {minutes:g} min, {args.rate:g} stories/s open-loop ({POOL} connections), "
            "gunicorn 2 workers, 2 Celery workers, beat; stories: intake (create, start, PATCH, assign, "
            f"complete), sla, plan; logs in {log_dir}",
            flush=True,
        )
        load = Load(port=port, token=token, ids=ids, rate=args.rate, seconds=minutes * 60)
        scraper = Scraper(port)
        load.run()
        rows = []
        for minute in range(1, int(minutes) + 1):
            until = load.start + 60 * minute
            time.sleep(max(0.0, until - time.time()))
            since = until - 60
            rows.append(_row(minute, load, since, until, _sample(since, until), _rss(processes), scraper))

        # Drain: the last steps, the backlog, the last open SLA tasks falling due and their scan.
        deadline = time.time() + 180
        breach_due = max((at for _, at in load.expected["breach"]), default=0) + 60 + 3 * SCAN_SECONDS
        while time.time() < deadline:
            sample = _sample(load.start, time.time())
            if load.finished() and sample["backlog"] == 0 and time.time() > breach_due:
                time.sleep(2 * SCAN_SECONDS)  # a late duplicate would land now
                if _sample(load.start, time.time())["backlog"] == 0:
                    break
            time.sleep(1)
        scraper.stop.set()
        checks = _checks(load, receiver, load.start - 5)
        failed = False
    finally:
        for name in ("beat", "worker1", "worker2", "web"):
            if name in processes:
                _stop(processes[name])
        if failed:
            for log in sorted(log_dir.glob("*.log")):
                print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    errors = sum(1 for d in load.done if not d[3]) + scraper.failed
    print(f"\nrequests {len(load.done)}, errors {errors} (scrapes failed {scraper.failed})")
    for sample_error in load.error_samples:
        print(f"  e.g. {sample_error}")
    print(f"{'effect':<40} {'expected':>8} {'lost':>6} {'dup/extra':>9}")
    for what, expected, lost, duplicated in checks:
        print(f"{what:<40} {expected:>8} {lost:>6} {duplicated:>9}")
    lost = sum(c[2] for c in checks)
    duplicated = sum(c[3] for c in checks)
    grew = _flat(rows)
    first_lag, last_lag = rows[0]["lag_p99"], rows[-1]["lag_p99"]
    lag_ok = last_lag <= 3 * max(first_lag, 0.001)
    print(f"flat (last minute <= 1.2x the second): {'yes' if not grew else 'NO: ' + '; '.join(grew)}")
    print(
        f"lag p99 first minute {first_lag * 1000:.0f} ms, last {last_lag * 1000:.0f} ms "
        "(target last <= 3x first)"
    )
    met = errors == 0 and lost == 0 and duplicated == 0 and not grew and lag_ok
    print(f"targets: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
