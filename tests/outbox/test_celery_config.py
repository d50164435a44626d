"""The Celery wiring: beat schedule, time limits, acknowledgement policy, the task body."""

from outbox.models import OutboxEvent
from outbox.registry import register_handler
from outbox.tasks import DISPATCH_HARD_TIME_LIMIT, DISPATCH_SOFT_TIME_LIMIT, outbox_dispatch_task
from polaris.celery import _beat_schedule
from polaris.celery import app as celery_app


def test_beat_runs_dispatch_and_the_sla_scan_each_expiring_before_its_next_run(settings):
    settings.OUTBOX_DISPATCH_INTERVAL_SECONDS = 5
    settings.SLA_SCAN_INTERVAL_SECONDS = 300
    schedule = _beat_schedule()
    assert schedule["outbox-dispatch"]["task"] == "outbox.dispatch"
    assert schedule["sla-scan"]["task"] == "sla.sla_scan"
    assert schedule["outbox-dispatch"]["schedule"] == 5
    assert schedule["sla-scan"]["schedule"] == 300
    for entry in schedule.values():
        assert 0 < entry["options"]["expires"] < entry["schedule"]


def test_the_installed_schedule_is_the_computed_one():
    assert set(celery_app.conf.beat_schedule) == {
        "outbox-dispatch",
        "sla-scan",
        "webhook-sweep",
        "idempotency-keys-purge",
        "expired-tokens-purge",
        "outbox-retention-trim",
        "webhook-attempts-trim",
        "timers-sweep",
        "retention-registered",
        "routing-load-repair",
    }


def test_every_scheduled_task_name_is_a_registered_task():
    # Entries are sent by name (workflow never imports sla or automation): a typo would fail silently.
    celery_app.loader.import_default_modules()
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks, entry["task"]


def test_dispatch_task_limits_and_acknowledgement():
    assert outbox_dispatch_task.name == "outbox.dispatch"
    assert 0 < outbox_dispatch_task.soft_time_limit == DISPATCH_SOFT_TIME_LIMIT < DISPATCH_HARD_TIME_LIMIT
    assert outbox_dispatch_task.time_limit == DISPATCH_HARD_TIME_LIMIT
    assert outbox_dispatch_task.acks_late is False
    assert celery_app.conf.worker_prefetch_multiplier == 1


def test_the_task_drains_due_events(make_event):
    seen = []
    register_handler("probe", lambda event: seen.append(event.id))
    event = make_event()
    result = outbox_dispatch_task.run()
    assert result["dispatched"] == 1
    assert seen == [event.id]
    assert OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.DISPATCHED
