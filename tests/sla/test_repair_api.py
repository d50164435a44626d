"""``/api/workflow/sla-repairs`` and ``/api/workflow/tasks/{id}/sla-history``: roles, bad input, the flow."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from sla.models import SLARecord, SLARepair
from sla.repair_apply import sla_repair_run
from tests.sla.conftest import MONDAY_10
from tests.support.api import assert_envelope, bearer_client

URL = "/api/workflow/sla-repairs"


@pytest.fixture
def open_task(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        return make_task()


@pytest.fixture
def for_user():
    """``for_user(user)`` → a client sending that user's JWT (``None``: anonymous)."""
    return bearer_client


@pytest.fixture
def admin_api(admin_user):
    return bearer_client(admin_user)


@pytest.fixture
def admin_session(admin_user):
    """A session-style client: a JWT issued now is not yet valid at a travelled-to past instant."""
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_admin_previews_then_applies(admin_session, intake_config, open_task):
    api = admin_session
    body = {"config": intake_config.pk, "target_minutes": 30}
    with time_machine.travel(MONDAY_10 + timedelta(minutes=40), tick=False):
        preview = api.post(URL, body, format="json")
    assert preview.status_code == 200, preview.json()
    data = preview.json()
    assert data["dry_run"] is True
    assert data["totals"] == {
        "total": 1,
        "changed": 1,
        "unchanged": 0,
        "newly_breached": 1,
        "no_longer_breached": 0,
    }
    assert data["records_total"] == 1
    (row,) = data["records"]
    assert row["task"] == str(open_task.pk)
    assert (row["old_breached"], row["new_breached"]) == (False, True)
    assert (row["old_target_minutes"], row["new_target_minutes"]) == (60, 30)
    assert data["change"] == {
        "kind": "config_target",
        "config": intake_config.pk,
        "calendar": None,
        "target_minutes": 30,
    }
    assert data["scope"] == {"open": True}
    assert not SLARepair.objects.exists()

    with time_machine.travel(MONDAY_10 + timedelta(minutes=40), tick=False):
        applied = api.post(URL, {**body, "dry_run": False, "scope": "open"}, format="json")
    assert applied.status_code == 202, applied.json()
    repair_id = applied.json()["id"]
    assert applied.json()["state"] == "pending"
    assert applied.json()["total"] == 1
    sla_repair_run(repair_id=repair_id)

    detail = api.get(f"{URL}/{repair_id}").json()
    assert detail["state"] == "done"
    assert (detail["changed"], detail["newly_breached"], detail["processed"]) == (1, 1, 1)
    assert api.get(URL).json()["results"][0]["id"] == repair_id

    history = api.get(f"/api/workflow/tasks/{open_task.pk}/sla-history")
    assert history.status_code == 200, history.json()
    versions = history.json()["versions"]
    assert [(v["number"], v["target_minutes"], v["current"]) for v in versions] == [
        (1, 60, False),
        (2, 30, True),
    ]
    assert versions[1]["repair"] == repair_id
    assert versions[1]["status"] == "breached"


def test_a_closed_window_and_a_calendar_change(admin_api, intake_config, open_task, office_calendar):
    body = {
        "config": intake_config.pk,
        "calendar": office_calendar.pk,
        "scope": {"closed_from": "2026-02-01T00:00:00Z", "closed_to": "2026-03-01T00:00:00Z"},
    }
    response = admin_api.post(URL, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["scope"]["closed_to"].startswith("2026-03-01")
    assert response.json()["totals"]["total"] == 1
    to_24x7 = admin_api.post(URL, {"config": intake_config.pk, "calendar": None}, format="json")
    assert to_24x7.status_code == 200, to_24x7.json()
    assert to_24x7.json()["totals"]["changed"] == 0  # it is 24x7 already


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"recompute": True, "config": 1, "target_minutes": 5}, "non_field_errors"),
        ({"config": 1}, "non_field_errors"),
        ({"config": 1, "target_minutes": 5, "hours": {}}, "non_field_errors"),
        ({"calendar": None, "hours": {"mon": [["09:00", "17:00"]]}}, "non_field_errors"),
        ({"recompute": False}, "recompute"),
        ({"config": 999_999, "target_minutes": 5}, "config"),
        ({"calendar": 999_999, "holidays": []}, "calendar"),
        ({"config": "x", "target_minutes": 5}, "config"),
        ({"config": 1, "target_minutes": 0}, "target_minutes"),
        ({"recompute": True, "scope": "closed"}, "scope"),
        ({"recompute": True, "scope": {"closed_from": "2026-03-01T00:00:00Z"}}, "scope"),
        (
            {
                "recompute": True,
                "scope": {"closed_from": "2026-03-01T00:00:00Z", "closed_to": "2026-02-01T00:00:00Z"},
            },
            "scope",
        ),
        (
            {
                "recompute": True,
                "scope": {"closed_from": "2024-01-01T00:00:00Z", "closed_to": "2026-02-01T00:00:00Z"},
            },
            "scope",
        ),
        ({"recompute": True, "scope": {"closed_from": "nope", "closed_to": "2026-02-01T00:00:00Z"}}, "scope"),
        ({"recompute": True, "limit": 501}, "limit"),
        ({"recompute": True, "surprise": 1}, "surprise"),
        ({"recompute": True, "dry_run": "no"}, "dry_run"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(admin_api, intake_config, body, field):
    if body.get("config") == 1:
        body = {**body, "config": intake_config.pk}
    response = admin_api.post(URL, body, format="json")
    data = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert field in data["details"], data


def test_bad_calendar_hours_or_holidays_are_400(admin_api, office_calendar):
    for body, field in (
        ({"calendar": office_calendar.pk, "hours": {"mon": [["17:00", "09:00"]]}}, "hours"),
        ({"calendar": office_calendar.pk, "hours": {"moon": []}}, "hours"),
        ({"calendar": office_calendar.pk, "hours": {"mon": []}}, "hours"),
        ({"calendar": office_calendar.pk, "holidays": ["2026-13-01"]}, "holidays"),
    ):
        data = assert_envelope(admin_api.post(URL, body, format="json"), 400, "VALIDATION_ERROR")
        assert field in data["details"], (body, data)
    assert not SLARepair.objects.exists()


def test_only_admins_repair(for_user, agent, supervisor, client_user, open_task):
    for user in (agent, supervisor, client_user):
        api = for_user(user)
        assert_envelope(api.post(URL, {"recompute": True}, format="json"), 403, "PERMISSION_DENIED")
        assert_envelope(api.get(URL), 403, "PERMISSION_DENIED")
    assert for_user(None).post(URL, {"recompute": True}, format="json").status_code == 401
    assert not SLARepair.objects.exists()


def test_an_unknown_repair_is_404(admin_api):
    assert_envelope(admin_api.get(f"{URL}/not-a-uuid"), 404, "NOT_FOUND")
    assert_envelope(admin_api.get(f"{URL}/2b0c1c9e-8f0c-4d8e-9a55-3b9f1f4f3a10"), 404, "NOT_FOUND")


def test_sla_history_is_staff_only_and_scoped(
    for_user, agent, other_agent, client_user, open_task, make_task
):
    path = f"/api/workflow/tasks/{open_task.pk}/sla-history"
    response = for_user(agent).get(path)
    assert response.status_code == 200, response.json()
    assert response.json()["measurement"] == 1
    assert response.json()["sla_record"] == str(SLARecord.objects.get(task=open_task).pk)
    assert_envelope(for_user(other_agent).get(path), 404, "NOT_FOUND")
    assert_envelope(for_user(client_user).get(path), 403, "PERMISSION_DENIED")
    no_sla = make_task(task_type="home-visit")
    assert_envelope(for_user(agent).get(f"/api/workflow/tasks/{no_sla.pk}/sla-history"), 404, "NOT_FOUND")
