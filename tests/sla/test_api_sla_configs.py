"""``/api/workflow/sla-configs``: roles, validation, PATCH semantics, the error envelope."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from sla.models import BusinessCalendar, SLAConfig, SLARecord
from tests.sla.conftest import MONDAY_10

URL = "/api/workflow/sla-configs"


@pytest.fixture
def api():
    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


def body(**overrides):
    return {"name": "Home visits", "task_type": "home-visit", "target_minutes": 480, **overrides}


def test_admin_creates_a_config(api, admin_user):
    calendar = BusinessCalendar.objects.create(name="London office", time_zone="Europe/London")
    response = api(admin_user).post(
        URL, body(calendar=calendar.pk, warning_percentages=[90, 50]), format="json"
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["name"] == "Home visits"
    assert data["warning_percentages"] == [50, 90]
    assert data["pause_states"] == ["blocked"]
    assert data["calendar"] == calendar.pk
    assert data["calendar_name"] == "London office"
    assert data["active"] is True
    assert SLAConfig.objects.filter(name="Home visits").exists()


def test_trailing_slash_is_optional(api, admin_user):
    assert api(admin_user).post(f"{URL}/", body(), format="json").status_code == 201
    assert api(admin_user).get(f"{URL}/").status_code == 200


@pytest.mark.parametrize("persona", ["agent", "client_user"])
def test_only_admins_create(api, request, persona):
    response = api(request.getfixturevalue(persona)).post(URL, body(), format="json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert response.json()["success"] is False


@pytest.mark.parametrize(("persona", "status"), [("admin_user", 200), ("agent", 200), ("client_user", 403)])
def test_who_may_read(api, request, persona, status, intake_config):
    client = api(request.getfixturevalue(persona))
    assert client.get(URL).status_code == status
    assert client.get(f"{URL}/{intake_config.pk}").status_code == status


def test_list_is_paginated_and_lists_the_defaults(api, agent, intake_config):
    data = api(agent).get(URL).json()
    assert "results" in data
    assert intake_config.name in {config["name"] for config in data["results"]}


def test_anonymous_is_refused(intake_config):
    response = APIClient().get(URL)
    assert response.status_code in (401, 403)
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(target_minutes=0), "target_minutes"),
        (body(warning_percentages=[150]), "warning_percentages"),
        (body(pause_states=["completed"]), "pause_states"),
        (body(task_type="Not A Slug"), "task_type"),
        (body(calendar=999999), "calendar"),
        ({"task_type": "x"}, "name"),
    ],
)
def test_validation_errors_use_the_envelope(api, admin_user, payload, field):
    response = api(admin_user).post(URL, payload, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["error_code"] == "VALIDATION_ERROR"
    assert field in data["details"]


def test_a_tie_with_an_active_config_is_a_409_conflict(api, admin_user, intake_config):
    response = api(admin_user).post(URL, body(name="Intake 2", task_type="intake"), format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "SLA_CONFIG_CONFLICT"
    assert "already covers" in response.json()["message"]
    assert response.json()["details"] == {"conflicting_config": intake_config.pk}
    assert not SLAConfig.objects.filter(name="Intake 2").exists()


def test_reactivating_into_a_tie_is_a_409_conflict(api, admin_user, intake_config):
    spare = SLAConfig.objects.create(name="Intake spare", task_type="intake", target_minutes=5, active=False)
    response = api(admin_user).patch(f"{URL}/{spare.pk}", {"active": True}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "SLA_CONFIG_CONFLICT"
    spare.refresh_from_db()
    assert spare.active is False


def test_patch_changes_only_the_fields_sent(api, admin_user, intake_config):
    response = api(admin_user).patch(f"{URL}/{intake_config.pk}", {"target_minutes": 90}, format="json")
    assert response.status_code == 200, response.json()
    intake_config.refresh_from_db()
    assert intake_config.target_minutes == 90
    assert intake_config.warning_percentages == [75]
    assert intake_config.task_type == "intake"


def test_patch_never_changes_running_records(api, admin_user, make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        running = make_task(title="before the edit")
        response = api(admin_user).patch(
            f"{URL}/{intake_config.pk}", {"target_minutes": 15, "warning_percentages": [10]}, format="json"
        )
        assert response.status_code == 200
        later = make_task(title="after the edit")

    old = SLARecord.objects.get(task=running)
    assert (old.target_minutes, old.warning_percentages) == (60, [75])
    assert old.due_at == MONDAY_10 + timedelta(minutes=60)
    new = SLARecord.objects.get(task=later)
    assert (new.target_minutes, new.warning_percentages) == (15, [10])
    assert new.due_at == MONDAY_10 + timedelta(minutes=15)


def test_patch_into_a_tie_is_refused(api, admin_user, make_config, intake_config):
    other = make_config(name="visits", task_type="home-visit")
    response = api(admin_user).patch(f"{URL}/{other.pk}", {"task_type": "intake"}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "SLA_CONFIG_CONFLICT"
    other.refresh_from_db()
    assert other.task_type == "home-visit"


def test_deactivating_then_reusing_a_scope(api, admin_user, intake_config):
    client = api(admin_user)
    assert client.patch(f"{URL}/{intake_config.pk}", {"active": False}, format="json").status_code == 200
    assert client.post(URL, body(name="Intake v2", task_type="intake"), format="json").status_code == 201


@pytest.mark.parametrize("persona", ["agent", "client_user"])
def test_only_admins_patch(api, request, persona, intake_config):
    response = api(request.getfixturevalue(persona)).patch(
        f"{URL}/{intake_config.pk}", {"target_minutes": 1}, format="json"
    )
    assert response.status_code == 403


def test_unknown_config_is_not_found(api, admin_user, db):
    response = api(admin_user).get(f"{URL}/987654")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


def test_the_schema_documents_the_endpoints(api, admin_user):
    response = api(admin_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert any(path.startswith(URL) for path in paths)


@pytest.mark.parametrize("config_id", ["not-a-number", "-1", "0", str(2**64)])
def test_a_malformed_id_is_not_found_in_the_envelope(api, admin_user, db, config_id):
    response = api(admin_user).get(f"{URL}/{config_id}/")
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"


@pytest.mark.parametrize("calendar", [2**64, -5, "x"])
def test_an_impossible_calendar_id_is_a_validation_error(api, admin_user, db, calendar):
    response = api(admin_user).post(URL, body(calendar=calendar), format="json")
    assert response.status_code == 400
    assert "calendar" in response.json()["details"]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_unknown_and_read_only_fields_are_refused_by_name(api, admin_user, intake_config, method):
    url = URL if method == "post" else f"{URL}/{intake_config.pk}"
    sent = body(name="Strict", colour="red", created_at="2026-01-01T00:00:00Z")
    response = getattr(api(admin_user), method)(url, sent, format="json")
    assert response.status_code == 400, response.json()
    data = response.json()
    assert data["error_code"] == "VALIDATION_ERROR"
    assert data["details"] == {"colour": ["Unknown field."], "created_at": ["This field is read-only."]}
    assert not SLAConfig.objects.filter(name="Strict").exists()


def test_a_retried_create_with_its_key_replays_and_creates_one_config(api, admin_user, db):
    client = api(admin_user)
    first = client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="sla-1")
    assert first.status_code == 201, first.json()
    again = client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="sla-1")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (201, first.json(), "true")
    assert SLAConfig.objects.filter(name="Home visits").count() == 1
    other = client.post(URL, body(name="Other"), format="json", HTTP_IDEMPOTENCY_KEY="sla-1")
    assert (other.status_code, other.json()["error_code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert not SLAConfig.objects.filter(name="Other").exists()


def test_a_retried_patch_with_its_key_replays_and_changes_nothing_again(api, admin_user, intake_config):
    client = api(admin_user)
    url = f"{URL}/{intake_config.pk}"
    first = client.patch(url, {"target_minutes": 90}, format="json", HTTP_IDEMPOTENCY_KEY="sla-2")
    assert first.status_code == 200, first.json()
    SLAConfig.objects.filter(pk=intake_config.pk).update(target_minutes=100)  # changed since, elsewhere
    again = client.patch(url, {"target_minutes": 90}, format="json", HTTP_IDEMPOTENCY_KEY="sla-2")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (200, first.json(), "true")
    intake_config.refresh_from_db()
    assert intake_config.target_minutes == 100  # the replay wrote nothing
