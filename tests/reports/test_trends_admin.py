"""The admin trend page: server-drawn SVG charts with axes, labels and a table, no script; linked from
the dashboard; admins only."""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent

from .history import task_event


@pytest.fixture
def admin_browser(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_trend_page_draws_four_charts_without_script(admin_browser, agency):
    now = timezone.now()
    task_id = uuid.uuid4()
    OutboxEvent.objects.bulk_create(
        [
            task_event(
                task_id=task_id,
                event_type="TaskCreated",
                sequence=1,
                at=now - timedelta(days=2),
                agency_id=agency.pk,
                new_state="new",
            ),
            task_event(
                task_id=task_id,
                event_type="TaskStateChanged",
                sequence=2,
                at=now - timedelta(days=1),
                agency_id=agency.pk,
                old_state="new",
                new_state="completed",
            ),
        ]
    )
    outbox_dispatch(budget_seconds=30)
    response = admin_browser.get("/admin/reports/rollup/")
    assert response.status_code == 200
    html = response.content.decode()
    content = html.split('id="trend-form"')[1]
    assert content.count('<svg class="trend-chart"') == 4
    assert "<script" not in content
    assert "Throughput (tasks per bucket)" in html
    assert "SLA attainment" in html
    assert html.count("<polyline") >= 4
    assert html.count('class="trend-axis"') == 8
    assert html.count("<details><summary>Table</summary>") == 4
    assert not re.search(r"(src|href)=\"https?://", html), "no external asset"
    # The completion shows in the throughput table (yesterday's row: created 0, completed 1).
    assert "<td>1</td>" in html


def test_bad_window_shows_an_error_not_a_crash(admin_browser):
    response = admin_browser.get("/admin/reports/rollup/?from=2026-05-10&to=2026-05-01")
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    response = admin_browser.get("/admin/reports/rollup/?from=nonsense&tz=Nowhere/Land")
    assert response.status_code == 200
    assert "errornote" in response.content.decode()


def test_non_admins_cannot_open_it(client, agent):
    client.force_login(agent)
    assert client.get("/admin/reports/rollup/").status_code == 302


def test_the_dashboard_links_to_the_trends(admin_browser):
    html = admin_browser.get("/admin/").content.decode()
    assert 'href="/admin/reports/rollup/"' in html
