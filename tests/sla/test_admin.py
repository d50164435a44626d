"""The admin: config validation errors on the form, read-only records, filling country holidays."""

import holidays
import pytest
from django.test import Client

from polaris.errors import ValidationFailed
from sla.configs import business_calendar_holidays_fill
from sla.models import BusinessCalendar, SLARecord


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def config_form(**overrides):
    return {
        "name": "Intake again",
        "service_area": "",
        "task_type": "intake",
        "target_minutes": "30",
        "warning_percentages": "[75]",
        "pause_states": '["blocked"]',
        "calendar": "",
        "active": "on",
        **overrides,
    }


def test_a_tie_shows_on_the_config_form(admin_client, intake_config):
    response = admin_client.post("/admin/sla/slaconfig/add/", config_form())
    assert response.status_code == 200  # the form again, with errors
    assert "already covers" in response.content.decode()


def test_bad_percentages_show_on_the_config_form(admin_client, intake_config):
    response = admin_client.post(
        "/admin/sla/slaconfig/add/", config_form(task_type="visit", warning_percentages="[120]")
    )
    assert response.status_code == 200
    assert "between 1 and 99" in response.content.decode()


def test_a_valid_config_saves(admin_client, intake_config):
    response = admin_client.post("/admin/sla/slaconfig/add/", config_form(task_type="visit"))
    assert response.status_code == 302


def test_records_are_read_only(admin_client, make_task, intake_config):
    record = SLARecord.objects.get(task=make_task())
    assert admin_client.get("/admin/sla/slarecord/").status_code == 200
    assert admin_client.get(f"/admin/sla/slarecord/{record.pk}/change/").status_code == 200
    assert admin_client.get("/admin/sla/slarecord/add/").status_code == 403
    response = admin_client.post(f"/admin/sla/slarecord/{record.pk}/change/", {"status": "met"})
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == "running"


def test_filling_country_holidays(db):
    calendar = BusinessCalendar.objects.create(name="UK office", time_zone="Europe/London", country_code="GB")
    added = business_calendar_holidays_fill(calendar=calendar, years=[2026])
    calendar.refresh_from_db()
    assert "2026-12-25" in calendar.holidays
    assert added == len(calendar.holidays) == len(holidays.country_holidays("GB", years=2026))
    assert business_calendar_holidays_fill(calendar=calendar, years=[2026]) == 0


def test_filling_needs_a_country(db):
    calendar = BusinessCalendar.objects.create(name="Nowhere", time_zone="UTC")
    with pytest.raises(ValidationFailed):
        business_calendar_holidays_fill(calendar=calendar, years=[2026])


def test_the_admin_action_fills_holidays(admin_client, db):
    calendar = BusinessCalendar.objects.create(name="UK office", time_zone="Europe/London", country_code="GB")
    response = admin_client.post(
        "/admin/sla/businesscalendar/",
        {"action": "fill_country_holidays", "_selected_action": [calendar.pk]},
    )
    assert response.status_code == 302
    calendar.refresh_from_db()
    assert calendar.holidays
