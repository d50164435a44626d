"""Retention never drops live work: an old event that a pending timer, an undelivered or paused delivery, or
an open SLA record still needs is kept; the rest of the history, automation's finished logs and
acknowledged alerts are trimmed, in bounded batches, each its own transaction."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automation.models import (
    Alert,
    Trigger,
    TriggerExecution,
    TriggerTimer,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from outbox.models import HandledEvent, OutboxEvent
from outbox.retention import history_trim
from outbox.tasks import outbox_retention_trim_task, retention_registered_task
from polaris.retention import batches_delete, retention_trims

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=400)


@pytest.fixture
def old_event(make_event):
    def make(**fields):
        return make_event(status="dispatched", dispatched_at=LONG_AGO, occurred_at=LONG_AGO, **fields)

    return make


@pytest.fixture
def trigger(db):
    return Trigger.objects.create(name="timed", event_type="TaskCreated", wait_minutes=60)


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(name="crm", url="https://crm.example.org/", secret="whsec_AAAA")


def timer(trigger, event, state, **fields):
    return TriggerTimer.objects.create(
        trigger=trigger,
        event=event,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        due_at=timezone.now() + timedelta(days=300),
        state=state,
        **fields,
    )


def test_old_events_that_live_work_needs_are_kept(settings, old_event, trigger, endpoint, make_task):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    pending_timer = timer(trigger, old_event(), "pending")
    paused = WebhookDelivery.objects.create(endpoint=endpoint, event=old_event(), status="paused")
    undelivered = WebhookDelivery.objects.create(endpoint=endpoint, event=old_event(), status="pending")
    WebhookAttempt.objects.create(delivery=undelivered, number=1, started_at=LONG_AGO, outcome="retrying")
    # A task whose SLA record is open: its events are kept however old.
    task = make_task()
    assert task.sla_record.status == "running"
    OutboxEvent.objects.filter(aggregate_id=task.pk).update(
        status="dispatched", dispatched_at=LONG_AGO, occurred_at=LONG_AGO
    )
    # Only history: an old event with its ledger row and a trigger execution, and one with a finished,
    # old delivery (which its own retention takes first, then the event can go).
    plain = old_event()
    HandledEvent.objects.create(handler="h", event=plain)
    TriggerExecution.objects.create(trigger=trigger, event=plain, outcome="matched", created_at=LONG_AGO)
    delivered_event = old_event()
    delivered = WebhookDelivery.objects.create(
        endpoint=endpoint, event=delivered_event, status="delivered", created_at=LONG_AGO
    )
    fired = timer(trigger, old_event(), "fired", fired_at=LONG_AGO)

    live_events = {pending_timer.event_id, paused.event_id, undelivered.event_id}
    before = OutboxEvent.objects.count()
    # The history first: what a delivery or timer (finished or not) refers to stays, for now.
    assert outbox_retention_trim_task()["events"] == 1
    assert not OutboxEvent.objects.filter(pk=plain.pk).exists()
    assert not TriggerExecution.objects.exists()
    assert OutboxEvent.objects.count() == before - 1

    counts = retention_registered_task()
    assert counts["webhook_deliveries"] == 1
    assert counts["trigger_timers"] == 1
    assert not WebhookDelivery.objects.filter(pk=delivered.pk).exists()
    assert not TriggerTimer.objects.filter(pk=fired.pk).exists()
    # Now the finished work's events go too; live work's never.
    assert outbox_retention_trim_task()["events"] == 2
    assert not OutboxEvent.objects.filter(pk=delivered_event.pk).exists()
    remaining = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert live_events <= remaining
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1
    assert TriggerTimer.objects.get(pk=pending_timer.pk).state == "pending"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"paused", "pending"}
    assert WebhookAttempt.objects.filter(delivery=undelivered).count() == 1
    # Once the SLA record is closed, the task's old events may go.
    task.sla_record.status = "met"
    task.sla_record.save()
    assert outbox_retention_trim_task()["events"] == 1


def test_the_history_is_trimmed_in_bounded_batches(settings, old_event):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    for _ in range(7):
        old_event()
    recent = old_event()
    OutboxEvent.objects.filter(pk=recent.pk).update(occurred_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert history_trim(batch=3) == 7
    deletes = [
        q["sql"] for q in queries if q["sql"].replace('"', "").startswith("DELETE FROM outbox_outboxevent ")
    ]
    assert len(deletes) == 3  # 3 + 3 + 1, each batch its own statement (and transaction)
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [recent.pk]


def test_automation_logs_are_trimmed_live_work_is_not(settings, make_event, trigger, endpoint, agency):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    event = make_event()
    old_exec = TriggerExecution.objects.create(
        trigger=trigger, event=event, outcome="matched", created_at=LONG_AGO
    )
    other = Trigger.objects.create(name="other", event_type="TaskCreated")
    new_exec = TriggerExecution.objects.create(trigger=other, event=event, outcome="matched")
    for status in ("delivered", "dead", "failed", "refused"):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=make_event(), status=status, created_at=LONG_AGO
        )
        WebhookAttempt.objects.create(delivery=delivery, number=1, outcome=status)
    for status in ("pending", "paused", "delivering"):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event=make_event(), status=status, created_at=LONG_AGO
        )
    pending = timer(trigger, make_event(), "pending", created_at=LONG_AGO)
    cancelled = timer(trigger, make_event(), "cancelled", cancelled_at=LONG_AGO)
    recent_fired = timer(trigger, make_event(), "fired", fired_at=timezone.now())
    acked = Alert.objects.create(message="old", acknowledged_at=LONG_AGO, created_at=LONG_AGO)
    open_alert = Alert.objects.create(message="open", created_at=LONG_AGO)

    assert {"webhook_deliveries", "trigger_executions", "trigger_timers", "alerts"} <= set(retention_trims())
    counts = retention_registered_task()
    assert counts["webhook_deliveries"] == 4
    assert (counts["trigger_executions"], counts["trigger_timers"], counts["alerts"]) == (1, 1, 1)
    assert list(TriggerExecution.objects.values_list("pk", flat=True)) == [new_exec.pk]
    assert not TriggerExecution.objects.filter(pk=old_exec.pk).exists()
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        "delivering",
        "paused",
        "pending",
    ]
    assert not WebhookAttempt.objects.exists()
    assert set(TriggerTimer.objects.values_list("pk", flat=True)) == {pending.pk, recent_fired.pk}
    assert not TriggerTimer.objects.filter(pk=cancelled.pk).exists()
    assert list(Alert.objects.values_list("pk", flat=True)) == [open_alert.pk]
    assert not Alert.objects.filter(pk=acked.pk).exists()


def test_zero_days_keeps_everything(settings, trigger, make_event):
    settings.TRIGGER_EXECUTION_RETENTION_DAYS = 0
    TriggerExecution.objects.create(
        trigger=trigger, event=make_event(), outcome="matched", created_at=LONG_AGO
    )
    assert retention_registered_task()["trigger_executions"] == 0
    assert TriggerExecution.objects.count() == 1


def test_batches_delete_commits_each_batch(trigger, make_event):
    event = make_event()
    for number in range(5):
        TriggerExecution.objects.create(
            trigger=Trigger.objects.create(name=f"t{number}", event_type="TaskCreated"),
            event=event,
            outcome="matched",
        )
    with CaptureQueriesContext(connection) as queries:
        assert batches_delete(TriggerExecution.objects.all(), batch=2) == 5
    assert sum(1 for q in queries if q["sql"].startswith("SAVEPOINT")) >= 3


def _plan_rows(node: dict, table: str) -> int:
    """Rows that the plan's nodes reading ``table`` (and the Materialize nodes over them) produced, over
    all their loops."""
    reads = node.get("Relation Name") == table
    below = sum(_plan_rows(child, table) for child in node.get("Plans", []))
    if node["Node Type"] == "Materialize" and below:
        reads = True
    return below + (node["Actual Rows"] * node["Actual Loops"] if reads else 0)


def test_the_open_sla_keeper_costs_a_probe_per_event_not_a_pass_over_open_records(old_event, make_task):
    """Many open SLA clocks (10,000) and a batch of 100 old task events: what the keeper reads of the SLA
    records stays within one pass over them plus a probe per event. Written as ``IN (every open record's
    task)`` it rescanned them for every event once they no longer fitted ``work_mem`` (held low here)."""
    from outbox.retention import history_trimmable
    from sla.models import SLARecord
    from workflow.models import Task

    make_task()  # intake: one open SLA record, copied below
    table = SLARecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(quote_ident(column_name)) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name NOT IN ('id', 'task_id')",
            [table],
        )
        columns = ", ".join(cursor.fetchone()[0])
        # Records of tasks that do not exist: the foreign key is checked at commit, which never comes.
        cursor.execute(
            f"INSERT INTO {table} (id, task_id, {columns}) SELECT gen_random_uuid(), gen_random_uuid(), "  # noqa: S608
            f"{columns} FROM {table}, generate_series(1, 10000)"
        )
        cursor.execute(f"ANALYZE {table}")
    try:
        ids = [old_event().pk for _ in range(100)]
        OutboxEvent.objects.filter(pk__in=ids).update(aggregate_type="task")  # tasks without a record
        sql, params = history_trimmable().filter(pk__in=ids).values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64kB'")
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        assert _plan_rows(plan[0]["Plan"], table) <= 10_001 + 100
        assert set(history_trimmable().filter(pk__in=ids).values_list("pk", flat=True)) == set(ids)
    finally:  # Django checks the deferred foreign keys before rolling back
        SLARecord.objects.exclude(task__in=Task.objects.all()).delete()
