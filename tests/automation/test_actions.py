"""Action types: params validated at save, and what each one does (with its refusals recorded)."""

from unittest import mock

import pytest

from automation.actions.registry import actions_validate
from automation.actions.templating import template_render
from automation.engine import automation_handle_event
from automation.models import Alert, TriggerExecution, WebhookDelivery, WebhookEndpoint
from automation.services import trigger_create
from polaris.errors import ValidationFailed
from tests.automation.conftest import latest_event
from workflow.models import Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("actions", "problem"),
    [
        ("nope", "must be a list"),
        ([{"type": "launch_rocket", "params": {}}], "unknown type 'launch_rocket'"),
        ([{"type": "create_task", "params": {"title": "x"}}], "task_type is required"),
        ([{"type": "create_task", "params": {"task_type": "Bad Type", "title": "x"}}], "lowercase slug"),
        ([{"type": "create_task", "params": {"task_type": "a", "title": "x", "priority": "max"}}], "one of"),
        ([{"type": "create_task", "params": {"task_type": "a", "title": "x", "colour": 1}}], "unknown param"),
        ([{"type": "create_task", "params": {"task_type": "a", "title": "$"}}], "malformed $placeholder"),
        ([{"type": "update_task_state", "params": {"target_state": "done"}}], "one of"),
        ([{"type": "emit_alert", "params": {"message": 5}}], "must be a string"),
        ([{"type": "emit_alert", "params": {"message": "x", "severity": "panic"}}], "one of"),
        ([{"type": "webhook", "params": {"endpoint": 999999}}], "no webhook endpoint"),
        ([{"type": "webhook", "params": {"endpoint": True}}], "must be an integer"),
        ([{"type": "emit_alert", "params": {"message": "x"}, "when": "now"}], "unknown keys when"),
    ],
)
def test_params_are_validated_when_the_trigger_is_saved(actions, problem):
    assert any(problem in message for message in actions_validate(actions))
    with pytest.raises(ValidationFailed) as caught:
        trigger_create(name="t", event_type="TaskCreated", actions=actions)
    assert "actions" in caught.value.details


def test_templates_fill_event_fields_but_cannot_reach_attributes(make_task):
    event = latest_event(make_task(title="Intake"))
    names = {"payload": event.payload, "task_type": "intake"}
    rendered = template_render(
        "$title / ${task_type} / {title.__class__} / ${title.__class__} / $missing / $$",
        event=event,
        names=names,
    )
    assert rendered == "Intake / intake / {title.__class__} / ${title.__class__} / $missing / $"


def test_create_task_takes_overrides_and_the_source_assignee(make_task, agent):
    trigger_create(
        name="follow-up",
        event_type="TaskCreated",
        predicate='task_type == "intake"',
        actions=[
            {
                "type": "create_task",
                "params": {
                    "task_type": "follow-up",
                    "title": "Follow up $title",
                    "service_area": "benefits",
                    "assignee": "source",
                    "description": "Caused by $event_id",
                },
            }
        ],
    )
    source = make_task(title="Intake", service_area="housing")
    event = latest_event(source)
    automation_handle_event(event)
    follow_up = Task.objects.get(task_type="follow-up")
    assert (follow_up.title, follow_up.service_area, follow_up.assignee_id) == (
        "Follow up Intake",
        "benefits",
        agent.pk,
    )
    assert follow_up.priority == "normal"
    assert follow_up.description == f"Caused by {event.id}"


def test_update_task_state_moves_the_source_task_through_the_service(make_task, agent):
    trigger_create(
        name="auto-start",
        event_type="TaskCreated",
        actions=[{"type": "update_task_state", "params": {"target_state": "in_progress"}}],
    )
    task = make_task()
    created = latest_event(task)
    automation_handle_event(created)
    task.refresh_from_db()
    assert task.state == "in_progress"
    moved = latest_event(task)
    assert (moved.causation_id, moved.depth, moved.actor_id) == (created.id, 1, None)
    [result] = TriggerExecution.objects.get(event=created).action_results
    assert result["status"] == "done"
    assert result["event_id"] == str(moved.id)


def test_a_refused_transition_is_recorded_not_raised(make_task, agent):
    trigger_create(
        name="auto-start",
        event_type="TaskCreated",
        actions=[
            {"type": "update_task_state", "params": {"target_state": "in_progress"}},
            {"type": "emit_alert", "params": {"message": "still runs"}},
        ],
    )
    task = make_task(assignee=None)  # guard has_assignee refuses new → in_progress
    event = latest_event(task)
    automation_handle_event(event)
    task.refresh_from_db()
    assert task.state == "new"
    execution = TriggerExecution.objects.get(event=event)
    assert execution.outcome == "refused"
    refused, alerted = execution.action_results
    assert (refused["status"], refused["error_code"]) == ("refused", "GUARD_FAILED")
    assert refused["details"]["guards"] == ["has_assignee"]
    assert alerted["status"] == "done"
    assert Alert.objects.filter(message="still runs").exists()


def test_update_task_state_can_target_a_task_named_in_the_payload(make_task, agent):
    target = make_task(title="Other")
    trigger_create(
        name="cancel-other",
        event_type="TaskStateChanged",
        predicate='new_state == "completed"',
        actions=[
            {
                "type": "update_task_state",
                "params": {
                    "target_state": "cancelled",
                    "task_id_field": "other_id",
                    "reason": "done by $title",
                },
            }
        ],
    )
    source = make_task(title="Source")
    task_transition(task_id=source.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=source.pk, target_state="completed", actor=agent)
    event = latest_event(source)
    event.payload = {**event.payload, "other_id": str(target.pk)}
    automation_handle_event(event)
    target.refresh_from_db()
    assert target.state == "cancelled"
    assert latest_event(target).payload["reason"] == "done by Source"


def test_emit_alert_writes_a_row_and_a_structured_log_line(make_task, agency, caplog):
    trigger_create(
        name="alert",
        event_type="TaskCreated",
        actions=[
            {"type": "emit_alert", "params": {"severity": "critical", "message": "New $task_type task"}}
        ],
    )
    event = latest_event(make_task())
    with caplog.at_level("INFO", logger="automation.actions"):
        automation_handle_event(event)
    alert = Alert.objects.get()
    assert (alert.severity, alert.message, alert.agency_id) == ("critical", "New intake task", agency.pk)
    [record] = [r for r in caplog.records if r.name == "automation.actions"]
    assert record.alert_id == alert.pk
    assert record.event_id == str(event.id)
    assert record.correlation_id == event.correlation_id


def test_webhook_action_queues_deliveries_after_commit(make_task, django_capture_on_commit_callbacks):
    wanted = WebhookEndpoint.objects.create(name="crm", url="https://crm.example.org/hook", secret="s")
    WebhookEndpoint.objects.create(
        name="plans-only", url="https://p.example.org/", secret="s", event_types=["ActionPlanCreated"]
    )
    WebhookEndpoint.objects.create(name="off", url="https://off.example.org/", secret="s", enabled=False)
    trigger_create(name="hook", event_type="TaskCreated", actions=[{"type": "webhook", "params": {}}])
    event = latest_event(make_task())
    with mock.patch("automation.tasks.webhook_deliver_task.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            automation_handle_event(event)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.endpoint, delivery.status) == (wanted, "pending")
        send.assert_not_called()  # nothing leaves the process before the transaction commits
        for callback in callbacks:
            callback()
    send.assert_called_once_with((delivery.pk,), retry=False)


@pytest.mark.parametrize("event_type", ["", "task_state_changed", "Task State", "X" * 65])
def test_event_types_are_pascal_case_names(event_type):
    with pytest.raises(ValidationFailed) as caught:
        trigger_create(name="t", event_type=event_type)
    assert "event_type" in caught.value.details
