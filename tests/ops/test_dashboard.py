"""The admin index shows the operations dashboard: server-rendered SVG charts, no external assets."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from automation.models import Alert
from ops.dashboard import BAR_MAX_WIDTH, bar_chart
from outbox.models import OutboxEvent


def test_bar_widths_are_proportional_to_the_largest_value():
    chart = bar_chart([("A", 10, "a"), ("B", 5, "b"), ("C", 0, "c")], row_height=20)
    assert [bar.width for bar in chart["bars"]] == [BAR_MAX_WIDTH, BAR_MAX_WIDTH // 2, 0]
    assert [bar.y for bar in chart["bars"]] == [0, 20, 40]
    assert chart["height"] == 60
    assert [bar.width for bar in bar_chart([("A", 0, "a")])["bars"]] == [0]  # all zero: no division by zero


@pytest.fixture
def admin_page(client, admin_user, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    client.force_login(admin_user)

    def get() -> str:
        response = client.get("/admin/")
        assert response.status_code == 200
        return response.content.decode()

    return get


def test_dashboard_shows_workload_sla_outbox_and_alerts(admin_page, make_task, agency):
    make_task()
    make_task(title="Second")
    first = OutboxEvent.objects.order_by("occurred_at").first()
    OutboxEvent.objects.filter(pk=first.pk).update(status="dead")
    Alert.objects.create(severity="critical", message="Loop prevented on trigger Escalate", agency=agency)

    html = admin_page()

    assert 'id="ops-dashboard"' in html
    assert "Tasks per state (2)" in html
    assert html.count("<svg") >= 4  # tasks, plans, SLA, outbox
    # The "New" bar carries the value 2 and spans the whole chart width (it is the largest).
    assert re.search(r"<title>New: 2</title>", html)
    assert f'width="{BAR_MAX_WIDTH}"' in html
    assert re.search(r'id="ops-sla-breached">0<', html)
    assert "1 dead event" in html
    assert "Loop prevented on trigger Escalate" in html
    assert "North Star Services" in html
    # The usual app list is still there below.
    assert "Site administration" in html or "app-workflow" in html


def test_dashboard_uses_no_external_assets(admin_page):
    html = admin_page()
    external = re.findall(r'(?:src|href)="(https?:)?//[^"]*"', html)
    assert external == []
    assert "<script src=" not in html.split('id="ops-dashboard"')[1].split("</section>")[0]


def test_dashboard_says_when_nothing_is_pending(admin_page):
    assert 'id="ops-outbox-lag">none pending<' in admin_page()


def test_dashboard_flags_lag_when_the_oldest_pending_event_is_old(admin_page, make_task):
    make_task()
    OutboxEvent.objects.update(occurred_at=timezone.now() - timedelta(minutes=5))
    html = admin_page()
    match = re.search(r'class="ops-warn" id="ops-outbox-lag">([\d.]+) s<', html)
    assert match
    assert float(match.group(1)) >= 300
