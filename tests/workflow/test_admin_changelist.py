"""The task changelist: short columns that fit 1440 px, an overdue highlight, and the overdue and SLA
filters (the dashboard links to them); a bad filter value is the changelist's error page, never a 500."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sla.models import SLAConfig, SLARecord
from workflow.admin_changelist import TASK_LIST_DISPLAY, short_datetime
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def intake_sla(db):
    """The default intake SLA (60 min), a data migration's row: a transactional test elsewhere may have
    flushed it (as tests/sla/conftest.py says)."""
    config, _ = SLAConfig.objects.get_or_create(
        task_type="intake",
        service_area="",
        active=True,
        defaults={"name": "Intake (default)", "target_minutes": 60},
    )
    return config


LIST = reverse("admin:workflow_task_changelist")


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def titles(response) -> set[str]:
    assert response.status_code == 200
    return set(re.findall(r'<th class="field-title"><a [^>]*>([^<]+)</a>', response.content.decode()))


def test_the_columns_are_few_and_the_dates_short(admin_client, make_task):
    assert len(TASK_LIST_DISPLAY) <= 6
    make_task(due_at=timezone.now() + timedelta(days=2))
    html = admin_client.get(LIST).content.decode()
    for header in ("Status", "Due", "Created"):
        assert f">{header}</a>" in html
    assert "task-state task-state-new" in html
    # No "Dec. 7, 2026, 2:40 p.m.": day, month and time, no wrapping.
    assert not re.search(r"\w+\. \d+, \d{4}, \d+:\d+ [ap]\.m\.", html)
    assert "white-space: nowrap" in html


def test_short_datetime():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert short_datetime(None) == "—"
    assert short_datetime(datetime(2026, 3, 4, 9, 30, tzinfo=UTC), now=now) == "4 Mar 09:30"
    assert short_datetime(datetime(2025, 3, 4, 9, 30, tzinfo=UTC), now=now) == "4 Mar 2025"


def test_overdue_open_tasks_are_highlighted_and_filtered(admin_client, make_task, agent):
    past = timezone.now() - timedelta(hours=3)
    late = make_task(title="Late", due_at=past)
    done = make_task(title="Late but done", due_at=past)
    task_transition(task_id=done.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=done.pk, target_state="completed", actor=agent)
    make_task(title="In time", due_at=timezone.now() + timedelta(hours=3))

    html = admin_client.get(LIST).content.decode()
    assert html.count("task-overdue") - html.count(".task-overdue") == 1
    assert "· overdue" in html

    assert titles(admin_client.get(LIST + "?overdue=yes")) == {late.title}
    assert admin_client.get(LIST + "?overdue=maybe").status_code == 302  # ?e=1: the changelist's error page


def test_the_sla_filter_is_the_apis_rule(admin_client, make_task):
    running = make_task(title="Running clock")
    risky = make_task(title="Risky clock")
    breached = make_task(title="Breached clock")
    make_task(title="No clock", task_type="home-visit")
    SLARecord.objects.filter(task=risky).update(due_at=timezone.now() - timedelta(minutes=1))
    SLARecord.objects.filter(task=breached).update(status="breached", breached_at=timezone.now())

    assert titles(admin_client.get(LIST + "?sla_status=at_risk")) == {risky.title}
    assert titles(admin_client.get(LIST + "?sla_status=breached")) == {breached.title}
    assert titles(admin_client.get(LIST + "?sla_status=running")) == {running.title}  # at risk is its own
    bad = admin_client.get(LIST + "?sla_status=bogus")
    assert bad.status_code == 302
    assert "e=1" in bad["Location"]
