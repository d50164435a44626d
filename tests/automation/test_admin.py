"""The admin: trigger validation errors on the form, enable/disable and dry-run actions, alert
acknowledge, delivery replay."""

import json
from unittest import mock

import pytest
from django.test import Client

from automation.models import Alert, Trigger, WebhookDelivery, WebhookEndpoint
from automation.services import trigger_create
from tests.automation.conftest import latest_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(admin_user) -> Client:
    browser = Client()
    browser.force_login(admin_user)
    return browser


def test_the_trigger_form_shows_predicate_and_params_errors(admin_client_):
    response = admin_client_.post(
        "/admin/automation/trigger/add/",
        {
            "name": "bad",
            "event_type": "TaskCreated",
            "predicate": "payload.__class__",
            "actions": '[{"type": "emit_alert", "params": {}}]',
            "position": 5,
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "Attribute access is not allowed" in form.errors["predicate"][0]
    assert "message is required" in form.errors["actions"][0]
    assert not Trigger.objects.filter(name="bad").exists()


def test_the_trigger_form_saves_a_valid_trigger(admin_client_):
    response = admin_client_.post(
        "/admin/automation/trigger/add/",
        {
            "name": "good",
            "event_type": "TaskCreated",
            "predicate": 'priority == "urgent"',
            "actions": '[{"type": "emit_alert", "params": {"message": "Urgent: $title"}}]',
            "position": 5,
        },
    )
    assert response.status_code == 302
    assert Trigger.objects.get(name="good").enabled is False


def test_enable_disable_and_dry_run_actions(admin_client_, make_task):
    trigger = trigger_create(name="t", event_type="TaskCreated", predicate='task_type == "intake"')
    make_task()
    url = "/admin/automation/trigger/"
    admin_client_.post(url, {"action": "disable", "_selected_action": [trigger.pk]})
    trigger.refresh_from_db()
    assert trigger.enabled is False
    admin_client_.post(url, {"action": "enable", "_selected_action": [trigger.pk]})
    trigger.refresh_from_db()
    assert trigger.enabled is True
    response = admin_client_.post(
        url, {"action": "dry_run_latest", "_selected_action": [trigger.pk]}, follow=True
    )
    [message] = [str(m) for m in response.context["messages"] if "on event" in str(m)]
    assert "matches" in message
    assert not trigger.executions.exists()


def test_alert_acknowledge_and_delivery_replay_actions(admin_client_, admin_user, make_task):
    alert = Alert.objects.create(message="look")
    admin_client_.post("/admin/automation/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.acknowledged_by == admin_user

    endpoint = WebhookEndpoint.objects.create(name="e", url="https://example.org/h", secret="s")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=latest_event(make_task()), status="dead", attempts=8
    )
    with mock.patch("automation.tasks.webhook_deliver_task.apply_async"):
        admin_client_.post(
            "/admin/automation/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]}
        )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.round_start) == ("pending", 8, 8)  # attempts kept


@pytest.mark.parametrize(
    "path", ["trigger", "triggerexecution", "alert", "webhookendpoint", "webhookdelivery"]
)
def test_changelists_render(admin_client_, path):
    assert admin_client_.get(f"/admin/automation/{path}/").status_code == 200


def test_the_dry_run_page_explains_an_event_and_writes_nothing(admin_client_, make_task):
    from automation.models import TriggerExecution

    trigger = trigger_create(
        name="t",
        event_type="TaskCreated",
        predicate='task_type == "intake" and priority == "urgent"',
        actions=[{"type": "emit_alert", "params": {"message": "Urgent $title"}}],
    )
    event = latest_event(make_task(title="Cleo"))
    url = f"/admin/automation/trigger/{trigger.pk}/dry-run/"
    assert url.encode() in admin_client_.get(f"/admin/automation/trigger/{trigger.pk}/change/").content

    page = admin_client_.post(url, {"event_id": str(event.id)})
    assert page.status_code == 200
    assert page.context["answer"]["failed_clause"] == 'priority == "urgent"'
    body = json.dumps(
        {"event_type": "TaskCreated", "payload": {"task_type": "intake", "priority": "urgent", "title": "X"}}
    )
    page = admin_client_.post(url, {"event": body})
    assert page.context["answer"]["actions"] == [{"type": "emit_alert", "params": {"message": "Urgent X"}}]
    assert b"Matches" in page.content

    page = admin_client_.post(url, {"event_id": "00000000-0000-0000-0000-000000000000"})
    assert "Event not found." in str(page.context["form"].non_field_errors())
    assert not TriggerExecution.objects.exists()
    assert not Alert.objects.exists()
