"""A real browser (headless Debian Chromium driven by Playwright) against a live server: log into the
admin, see the operations dashboard, add an SLA config, and see a trigger's bad predicate refused.
Screenshots land in test-artifacts/ (gitignored)."""

import shutil
from pathlib import Path

import pytest
from django.db import connections

from sla.models import SLAConfig
from tests.factories import AdminFactory
from workflow.services.tasks import task_transition

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium not installed (apt-get install chromium, or run scripts/ci_system_packages.sh)",
    ),
]


@pytest.fixture
def page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes here are
    # still plain synchronous calls (the live server answers from its own thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()
            # The connection the test's ORM calls opened under Playwright is not the one pytest-django's
            # teardown closes (Django keeps connections in context-local storage); left open it outlived
            # the session and blocked dropping the test database. Close it while it is still reachable.
            connections.close_all()


def test_admin_dashboard_sla_config_and_trigger_validation(page, live_server, make_task, agent):
    AdminFactory(username="browser-admin")  # password pw-Polaris-123
    for title in ("Intake", "Housing form", "Benefits check"):
        make_task(title=title)
    started = make_task(title="Started")
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)

    # Log in.
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "browser-admin")
    page.fill("#id_password", "pw-Polaris-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    # The operations dashboard, drawn by the server.
    dashboard = page.locator("#ops-dashboard")
    dashboard.wait_for()
    assert dashboard.locator("svg.ops-chart").count() >= 4
    assert "Tasks per state" in dashboard.inner_text()
    assert "Outbox backlog and lag" in dashboard.inner_text()
    assert "Tasks per state (4)" in dashboard.inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)

    # Add an SLA config.
    page.goto(f"{live_server.url}/admin/sla/slaconfig/add/")
    page.fill("#id_name", "Browser: urgent housing")
    page.fill("#id_service_area", "housing")
    page.fill("#id_task_type", "urgent-repair")
    page.fill("#id_target_minutes", "240")
    page.click("input[name=_save]")
    page.locator(".messagelist .success").wait_for()
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    config = SLAConfig.objects.get(name="Browser: urgent housing")
    assert (config.service_area, config.task_type, config.target_minutes) == ("housing", "urgent-repair", 240)

    # A trigger whose predicate is not in the safe language is refused on the form.
    page.goto(f"{live_server.url}/admin/automation/trigger/add/")
    page.fill("#id_name", "Browser: bad predicate")
    page.fill("#id_event_type", "TaskStateChanged")
    page.fill("#id_predicate", "__import__('os').system('true')")
    page.fill("#id_actions", "[]")
    page.click("input[name=_save]")
    page.locator(".errornote").wait_for()
    predicate_errors = page.locator(".field-predicate .errorlist")
    assert predicate_errors.count() == 1
    assert predicate_errors.inner_text().strip()
    page.screenshot(path=str(ARTIFACTS / "admin-trigger-bad-predicate.png"), full_page=True)
    from automation.models import Trigger

    assert not Trigger.objects.filter(name="Browser: bad predicate").exists()
