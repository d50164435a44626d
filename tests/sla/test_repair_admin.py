"""The admin's repair pages: preview (writes nothing), apply (makes the change, audited), admins only."""

import pytest
from django.test import Client

from polaris.audit.models import AuditEntry
from sla.models import SLARepair

URL = "/admin/sla/slarepair/preview/"


@pytest.fixture
def admin_browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def form(**overrides):
    return {"kind": "config_target", "target_minutes": "30", "closed_from": "", "closed_to": "", **overrides}


def test_preview_shows_totals_and_a_sample_then_apply_starts_the_repair(
    admin_browser, intake_config, make_task
):
    task = make_task()
    assert admin_browser.get("/admin/sla/slarepair/").status_code == 200
    assert URL in admin_browser.get("/admin/sla/slarepair/").content.decode()
    assert admin_browser.get(URL).status_code == 200

    page = admin_browser.post(URL, form(config=intake_config.pk, preview="Preview"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Newly breached" in html
    assert str(task.pk) in html
    assert 'name="apply"' in html
    assert not SLARepair.objects.exists()
    intake_config.refresh_from_db()
    assert intake_config.target_minutes == 60

    applied = admin_browser.post(URL, form(config=intake_config.pk, apply="Apply"))
    assert applied.status_code == 302
    repair = SLARepair.objects.get()
    assert repair.total == 1
    intake_config.refresh_from_db()
    assert intake_config.target_minutes == 30
    assert AuditEntry.objects.filter(action="sla_repair.created", object_id=str(repair.pk)).exists()


def test_bad_input_shows_on_the_form(admin_browser, intake_config, office_calendar):
    page = admin_browser.post(URL, form(kind="config_target", preview="Preview"))  # no config
    assert page.status_code == 200
    assert "Give one change" in page.content.decode()
    page = admin_browser.post(
        URL,
        form(
            kind="calendar_hours",
            calendar=office_calendar.pk,
            hours='{"mon": [["17:00", "09:00"]]}',
            preview="1",
        ),
    )
    assert "does not end after it starts" in page.content.decode()
    assert not SLARepair.objects.exists()


def test_only_admins_see_the_pages(agent, supervisor):
    for user in (agent, supervisor):
        client = Client()
        client.force_login(user)
        assert client.get(URL).status_code in (302, 403)
        assert client.post(URL, form(kind="recompute", apply="1")).status_code in (302, 403)
    assert not SLARepair.objects.exists()
