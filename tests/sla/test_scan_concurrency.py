"""Two scans at once (threads, each with its own database connection) breach and warn each record once."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from outbox.models import OutboxEvent
from sla.models import SLARecord
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10

RECORDS = 120


def run_concurrently(*, now, batch_size: int, scans: int = 2):
    barrier = threading.Barrier(scans)
    results, errors = [], []

    def scan():
        try:
            barrier.wait(timeout=10)
            results.append(sla_scan(now=now, batch_size=batch_size))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scan) for _ in range(scans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == scans
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_scans_breach_each_record_once(make_task, make_config):
    make_config(name="visits", task_type="home-visit", target_minutes=60, warning_percentages=[50])
    with time_machine.travel(MONDAY_10, tick=False):
        for number in range(RECORDS):
            make_task(title=f"visit {number}", task_type="home-visit")

    results = run_concurrently(now=MONDAY_10 + timedelta(minutes=61), batch_size=10)

    assert sum(result.breached for result in results) == RECORDS
    assert SLARecord.objects.filter(status="breached").count() == RECORDS
    per_record = Counter(
        OutboxEvent.objects.filter(event_type="SLABreached").values_list("aggregate_id", flat=True)
    )
    assert len(per_record) == RECORDS
    assert set(per_record.values()) == {1}


@pytest.mark.django_db(transaction=True)
def test_concurrent_scans_warn_each_record_once(make_task, make_config):
    make_config(name="visits", task_type="home-visit", target_minutes=60, warning_percentages=[50, 90])
    with time_machine.travel(MONDAY_10, tick=False):
        for number in range(RECORDS):
            make_task(title=f"visit {number}", task_type="home-visit")

    results = run_concurrently(now=MONDAY_10 + timedelta(minutes=50), batch_size=10, scans=3)

    assert sum(result.warned for result in results) == RECORDS
    per_record = Counter(
        OutboxEvent.objects.filter(event_type="SLAWarning").values_list("aggregate_id", "payload__percentage")
    )
    assert len(per_record) == RECORDS
    assert set(per_record.values()) == {1}
    assert SLARecord.objects.filter(warnings_sent=[50]).count() == RECORDS


@pytest.mark.django_db(transaction=True)
def test_scan_racing_late_completions_breaches_each_record_once(make_task, make_config, agent):
    from workflow.services.tasks import task_transition

    make_config(name="visits", task_type="home-visit", target_minutes=60, warning_percentages=[])
    count = 30
    with time_machine.travel(MONDAY_10, tick=False):
        tasks = [make_task(title=f"visit {n}", task_type="home-visit") for n in range(count)]
        for task in tasks:
            task_transition(task_id=task.pk, target_state="in_progress", actor=agent)

    barrier = threading.Barrier(2)
    errors = []

    def complete_all():
        try:
            barrier.wait(timeout=10)
            for task in tasks:
                task_transition(task_id=task.pk, target_state="completed", actor=agent)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def scan_repeatedly():
        try:
            barrier.wait(timeout=10)
            for _ in range(count):
                sla_scan(batch_size=1)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=True):
        threads = [threading.Thread(target=complete_all), threading.Thread(target=scan_repeatedly)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert not errors, errors
    records = SLARecord.objects.filter(task__in=tasks)
    assert records.filter(status="breached", stopped_at__isnull=False).count() == count
    per_record = Counter(
        OutboxEvent.objects.filter(event_type="SLABreached").values_list("aggregate_id", flat=True)
    )
    assert len(per_record) == count
    assert set(per_record.values()) == {1}
    detected = Counter(
        OutboxEvent.objects.filter(event_type="SLABreached").values_list("payload__detected_by", flat=True)
    )
    assert sum(detected.values()) == count
