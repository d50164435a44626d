"""Every bar of the dashboard links to the admin list it counts, and that list holds as many rows."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ops.dashboard import bar_chart, dashboard_data
from outbox.models import OutboxEvent
from sla.models import SLAConfig, SLARecord
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


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def rows_on(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(re.findall(r'<input type="checkbox" name="_selected_action"', response.content.decode()))


def test_a_bar_without_a_url_stays_plain():
    chart = bar_chart([("A", 1, "a"), ("B", 2, "b", "/admin/x/")])
    assert [bar.url for bar in chart["bars"]] == ["", "/admin/x/"]


def test_every_bar_links_to_a_list_of_as_many_rows(admin_client, make_task, agent):
    make_task(title="New one")
    started = make_task(title="Started")
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)
    blocked = make_task(title="Blocked")
    task_transition(task_id=blocked.pk, target_state="blocked", actor=agent, reason="Waiting")
    risky = make_task(title="Risky")
    SLARecord.objects.filter(task=risky).update(due_at=timezone.now() - timedelta(minutes=1))
    breached = make_task(title="Breached")
    SLARecord.objects.filter(task=breached).update(status="breached", breached_at=timezone.now())
    dead = OutboxEvent.objects.filter(aggregate_id=started.pk).first()
    OutboxEvent.objects.filter(pk=dead.pk).update(status="dead", last_error="boom")
    OutboxEvent.objects.filter(aggregate_id=blocked.pk, sequence=1).update(status="processing")

    data = dashboard_data()
    charts = ("tasks", "plans", "sla_chart", "outbox_chart")
    bars = [bar for chart in charts for bar in data[chart]["bars"]]
    assert all(bar.url.startswith("/admin/") for bar in bars)
    checked = 0
    for bar in bars:
        assert rows_on(admin_client, bar.url) == bar.value, (bar.label, bar.url)
        checked += bar.value > 0
    assert checked >= 8  # new, in progress, blocked; running, at risk, breached; pending, processing, dead

    html = admin_client.get("/admin/").content.decode()
    for bar in bars:
        assert f'<a href="{bar.url.replace("&", "&amp;")}" class="ops-bar-link"' in html
    assert data["sla_urls"]["at_risk"] in html
