"""A real browser (headless Debian Chromium, Playwright) on the admin task page and the dashboard's links:
block a task with a reason through the page, see the history say so; click a dashboard bar and land on
its filtered list. Skips without chromium (see tests/ops/test_browser_admin.py for the set-up)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.models import OutboxEvent
from sla.models import SLAConfig
from tests.factories import AdminFactory
from tests.ops.test_browser_admin import ARTIFACTS, page, pytestmark  # noqa: F401  (fixture, skip marks)
from workflow.models import Task
from workflow.services.tasks import task_transition

expect = pytest.importorskip("playwright.sync_api").expect


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


def past_hour():
    return timezone.now() - timedelta(hours=1)


def log_in(page, live_server, username: str) -> None:  # noqa: F811  (page: the Playwright page)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-Polaris-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_block_a_task_with_a_reason_and_see_the_history(page, live_server, make_task):  # noqa: F811
    AdminFactory(username="browser-task-admin")
    task = make_task(title="Housing form")
    log_in(page, live_server, "browser-task-admin")

    page.goto(f"{live_server.url}/admin/workflow/task/{task.pk}/change/")
    assert page.locator("#task-state").inner_text() == "New"
    assert page.locator("#task-sla-status").inner_text() == "Running"
    page.click("#task-transition-blocked")
    page.locator("#task-block-form").wait_for()
    page.fill("#id_reason", "Waiting for the landlord's letter")
    page.click("input[name=_block]")

    page.locator(".messagelist .success").wait_for()
    expect(page.locator("#task-state")).to_have_text("Blocked")
    assert "Waiting for the landlord's letter" in page.locator("#task-blocked-reason").inner_text()
    history = page.locator("#task-history tbody tr")
    assert "new → blocked" in history.nth(0).inner_text()  # newest first
    assert "reason: Waiting for the landlord's letter" in history.nth(0).inner_text()
    assert "TaskCreated" in history.nth(1).inner_text()
    assert page.locator("#task-sla-status").inner_text() == "Paused"  # blocked pauses the clock
    page.screenshot(path=str(ARTIFACTS / "admin-task-blocked.png"), full_page=True)
    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.blocked_reason) == ("blocked", "Waiting for the landlord's letter")
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 2


def test_dashboard_bars_open_their_lists(page, live_server, make_task, agent):  # noqa: F811
    AdminFactory(username="browser-links-admin")
    make_task(title="Still new: housing benefit application review for a family of five", due_at=past_hour())
    started = make_task(title="Under way")
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, "browser-links-admin")

    page.locator("#ops-tasks a.ops-bar-link[aria-label^='In progress']").click()
    page.wait_for_url("**/admin/workflow/task/?state__exact=in_progress")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    assert "Under way" in rows.first.inner_text()

    # At 1440 px the list fits: no column pushed out of view (Due, Created and Status readable).
    page.goto(f"{live_server.url}/admin/workflow/task/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth <= el.clientWidth"), "the task list scrolls sideways"
    assert "overdue" in page.locator("#result_list td.field-due").all_inner_texts()[-1]

    page.goto(f"{live_server.url}/admin/")
    page.locator("#ops-sla a.ops-bar-link[aria-label^='Running']").click()
    page.wait_for_url("**/admin/workflow/task/?sla_status=running")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)

    page.goto(f"{live_server.url}/admin/")
    page.locator("#ops-outbox a.ops-bar-link[aria-label^='Dead']").click()
    page.wait_for_url("**/admin/outbox/outboxevent/?status__exact=dead")
    expect(page.locator("#changelist")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-dead-letters.png"), full_page=True)
