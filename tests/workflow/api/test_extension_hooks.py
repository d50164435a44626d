"""The task representation and list honour what other apps register in ``workflow.extensions``."""

import pytest

from polaris.errors import ValidationFailed
from tests.support.api import assert_envelope
from workflow import extensions

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_extension(monkeypatch):
    hooked = []

    def only_urgent(queryset, value):
        if value not in {"yes", "no"}:
            raise ValidationFailed(details={"urgent_only": ["Use yes or no."]})
        return queryset.filter(priority="urgent") if value == "yes" else queryset

    def hook(queryset):
        hooked.append(True)
        return queryset

    monkeypatch.setitem(extensions.task_fields, "shout", lambda task, viewer: task.title.upper())
    monkeypatch.setitem(extensions.task_filters, "urgent_only", only_urgent)
    monkeypatch.setattr(extensions, "task_queryset_hooks", [*extensions.task_queryset_hooks, hook])
    return hooked


def test_registered_fields_filters_and_hooks_apply(agent_api, make_task, fake_extension):
    urgent = make_task(title="Flood", priority="urgent")
    make_task(title="Calm")
    response = agent_api.get("/api/workflow/tasks", {"urgent_only": "yes"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [task["id"] for task in results] == [str(urgent.pk)]
    assert results[0]["shout"] == "FLOOD"
    assert fake_extension  # the queryset hook ran
    detail = agent_api.get(f"/api/workflow/tasks/{urgent.pk}").json()
    assert detail["shout"] == "FLOOD"


def test_a_registered_filter_rejects_bad_values(agent_api, fake_extension):
    body = assert_envelope(
        agent_api.get("/api/workflow/tasks", {"urgent_only": "maybe"}), 400, "VALIDATION_ERROR"
    )
    assert "urgent_only" in body["details"]


def test_sla_field_is_always_present(agent_api, make_task):
    task = make_task()
    assert "sla" in agent_api.get(f"/api/workflow/tasks/{task.pk}").json()
