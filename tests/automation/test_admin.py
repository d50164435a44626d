"""The admin: trigger validation errors on the form, enable/disable and dry-run actions, the backtest
page, the timers' list and its filters, alert acknowledge, delivery replay."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from automation.models import Alert, Trigger, TriggerTimer, WebhookDelivery, WebhookEndpoint
from automation.services import trigger_create
from tests.automation.conftest import dispatch_all, latest_event

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
    "path", ["trigger", "triggerexecution", "triggertimer", "alert", "webhookendpoint", "webhookdelivery"]
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


def test_the_trigger_form_refuses_a_misspelt_event_type(admin_client_):
    response = admin_client_.post(
        "/admin/automation/trigger/add/",
        {"name": "typo", "event_type": "TaskStateChnged", "predicate": "", "actions": "[]", "position": 5},
    )
    assert response.status_code == 200  # the form again, with the error; nothing saved
    [error] = response.context["adminform"].form.errors["event_type"]
    assert error.startswith("Unknown event type 'TaskStateChnged'; one of: ")
    assert "TaskStateChanged" in error
    assert not Trigger.objects.filter(name="typo").exists()


def test_the_backtest_page_shows_the_counts_of_a_seeded_history(admin_client_, make_task):
    trigger = trigger_create(name="intakes", event_type="TaskCreated", predicate='task_type == "intake"')
    for n in range(3):
        make_task(title=f"Intake {n}")
    for n in range(2):
        make_task(title=f"Assessment {n}", task_type="assessment")
    url = f"/admin/automation/trigger/{trigger.pk}/backtest/"
    assert admin_client_.get(url).status_code == 200  # the empty form renders
    now = timezone.now()
    window = {
        "since": (now - timedelta(days=1)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
    }

    page = admin_client_.post(url, window)

    assert page.status_code == 200
    answer = page.context["answer"]
    assert (answer["evaluated"], answer["matched"]) == (5, 3)  # the hand count: 3 intakes of 5 tasks
    assert "3 of 5 events matched" in page.content.decode()
    assert not trigger.executions.exists()


def test_the_timers_list_filters_by_trigger_and_by_task(admin_client_, make_task):
    timed = {"event_type": "TaskCreated", "wait_minutes": 60, "actions": []}
    first = trigger_create(name="first timer", **timed)
    second = trigger_create(name="second timer", **timed)
    one, two = make_task(title="One"), make_task(title="Two")
    dispatch_all()
    assert TriggerTimer.objects.count() == 4  # each trigger on each task

    def listed(query: str) -> set[tuple[int, object]]:
        response = admin_client_.get(f"/admin/automation/triggertimer/?{query}")
        assert response.status_code == 200
        return {(timer.trigger_id, timer.task_id) for timer in response.context["cl"].result_list}

    assert listed(f"trigger__id__exact={first.pk}") == {(first.pk, one.pk), (first.pk, two.pk)}
    assert listed(f"task__id__exact={two.pk}") == {(first.pk, two.pk), (second.pk, two.pk)}
    assert listed(f"trigger__id__exact={second.pk}&task__id__exact={one.pk}") == {(second.pk, one.pk)}
