"""The automation handler: built-in triggers, order, effectively-once, isolation, lineage and metrics."""

import pytest
from prometheus_client import REGISTRY

from automation.engine import automation_handle_event
from automation.metrics import automation_metrics_flush
from automation.models import Alert, TriggerExecution
from automation.services import trigger_create
from outbox.models import OutboxEvent
from outbox.registry import handlers_for
from tests.automation.conftest import latest_event
from workflow.models import Task
from workflow.services.action_plans import action_plan_activate
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def complete(task, agent):
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    return latest_event(task)


def test_the_handler_is_registered_for_every_event_type():
    assert any(handler.name == "automation" for handler in handlers_for("SomethingNew"))


def test_completed_intake_creates_a_high_priority_assessment(builtin_triggers, make_task, make_plan, agent):
    plan = make_plan()
    intake = make_task(title="Intake for Cleo", action_plan=plan, service_area="housing")
    event = complete(intake, agent)

    automation_handle_event(event)

    assessment = Task.objects.get(task_type="assessment")
    assert assessment.title == "Assessment: Intake for Cleo"
    assert assessment.priority == "high"
    assert (assessment.client_id, assessment.agency_id) == (intake.client_id, intake.agency_id)
    assert (assessment.action_plan_id, assessment.service_area) == (plan.pk, "housing")
    execution = TriggerExecution.objects.get(event=event)
    assert execution.outcome == "matched"
    assert execution.action_results == [
        {"type": "create_task", "status": "done", "task_id": str(assessment.pk)}
    ]
    created = latest_event(assessment)
    assert (created.causation_id, created.depth, created.correlation_id) == (
        event.id,
        event.depth + 1,
        event.correlation_id,
    )
    assert created.actor_id is None


def test_other_transitions_and_task_types_do_not_fire(builtin_triggers, make_task, agent):
    other = make_task(task_type="home-visit")
    automation_handle_event(complete(other, agent))
    intake = make_task()
    task_transition(task_id=intake.pk, target_state="in_progress", actor=agent)
    automation_handle_event(latest_event(intake))
    assert not Task.objects.filter(task_type="assessment").exists()
    assert not TriggerExecution.objects.exists()  # not_matched is counted, not stored (by default)


def test_the_same_event_handled_twice_creates_one_assessment(builtin_triggers, make_task, agent):
    event = complete(make_task(), agent)
    automation_handle_event(event)
    automation_handle_event(OutboxEvent.objects.get(pk=event.pk))
    assert Task.objects.filter(task_type="assessment").count() == 1
    assert TriggerExecution.objects.filter(event=event).count() == 1


def test_activating_a_plan_raises_an_agency_scoped_alert(
    builtin_triggers, make_plan, make_task, agent, agency
):
    plan = make_plan(title="Stable housing")
    make_task(action_plan=plan)
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    automation_handle_event(latest_event(plan))
    alert = Alert.objects.get()
    assert alert.message == "Action plan activated: Stable housing"
    assert (alert.severity, alert.agency_id, alert.event_id) == ("info", agency.pk, latest_event(plan).pk)


def test_triggers_run_in_position_order(make_task, agent):
    for position, name in ((30, "third"), (10, "first"), (20, "second")):
        trigger_create(
            name=name,
            event_type="TaskCreated",
            position=position,
            actions=[{"type": "emit_alert", "params": {"message": name}}],
        )
    automation_handle_event(latest_event(make_task()))
    assert list(Alert.objects.order_by("id").values_list("message", flat=True)) == [
        "first",
        "second",
        "third",
    ]


def test_a_failing_trigger_rolls_back_alone(make_task, agent, monkeypatch):
    from automation import alerts
    from automation.actions import registry

    def explode(context, params):
        alerts.alert_raise(severity="info", message="half-done", event=context.event)
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.ACTION_TYPES, "explode", registry.ActionType("explode", explode, ()))
    broken = trigger_create(name="broken", event_type="TaskCreated", position=1)
    broken.actions = [{"type": "explode", "params": {}}]
    broken.save()  # bypasses the trigger rules: the type exists only in this test
    trigger_create(
        name="fine",
        event_type="TaskCreated",
        position=2,
        actions=[{"type": "emit_alert", "params": {"message": "ok"}}],
    )
    event = latest_event(make_task())
    automation_handle_event(event)

    assert list(Alert.objects.values_list("message", flat=True)) == ["ok"]  # "half-done" rolled back
    outcomes = dict(TriggerExecution.objects.filter(event=event).values_list("trigger__name", "outcome"))
    assert outcomes == {"broken": "error", "fine": "matched"}
    assert "RuntimeError: boom" in TriggerExecution.objects.get(trigger=broken).error


def test_a_runtime_predicate_fault_is_recorded_as_error(make_task):
    trigger_create(name="typed", event_type="TaskCreated", predicate='payload["title"] > 3')
    event = latest_event(make_task())
    automation_handle_event(event)
    execution = TriggerExecution.objects.get(event=event)
    assert execution.outcome == "error"
    assert "Evaluation failed" in execution.error


def test_disabled_triggers_and_other_event_types_are_ignored(make_task):
    trigger_create(name="off", event_type="TaskCreated", enabled=False)
    trigger_create(name="elsewhere", event_type="ActionPlanCreated")
    automation_handle_event(latest_event(make_task()))
    assert not TriggerExecution.objects.exists()


def test_evaluations_are_counted_by_trigger_and_outcome(make_task, django_capture_on_commit_callbacks):
    hit = trigger_create(name="hit", event_type="TaskCreated", predicate='task_type == "intake"')
    miss = trigger_create(name="miss", event_type="TaskCreated", predicate='task_type == "other"')

    def value(trigger, outcome):
        labels = {"trigger_id": str(trigger.pk), "outcome": outcome}
        return REGISTRY.get_sample_value("automation_trigger_evaluations_total", labels) or 0

    before = value(hit, "matched"), value(miss, "not_matched")
    with django_capture_on_commit_callbacks(execute=True):
        automation_handle_event(latest_event(make_task()))
    automation_metrics_flush()
    assert value(hit, "matched") == before[0] + 1
    assert value(miss, "not_matched") == before[1] + 1


def test_not_matched_can_be_recorded_when_configured(make_task, settings):
    settings.AUTOMATION_RECORD_NOT_MATCHED = True
    trigger_create(name="miss", event_type="TaskCreated", predicate='task_type == "other"')
    event = latest_event(make_task())
    automation_handle_event(event)
    automation_handle_event(event)
    assert list(TriggerExecution.objects.values_list("outcome", flat=True)) == ["not_matched"]


def test_trigger_changes_reach_the_cached_rulesets(make_task, settings, monkeypatch):
    from automation import ruleset
    from automation.services import triggers_set_enabled

    trigger = trigger_create(
        name="alert", event_type="TaskCreated", actions=[{"type": "emit_alert", "params": {"message": "hi"}}]
    )
    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)  # as if committed: caching is on
    settings.AUTOMATION_TRIGGER_CACHE_SECONDS = 60
    automation_handle_event(latest_event(make_task()))
    assert Alert.objects.count() == 1

    # A change made by another process (no signal here) is seen once the cache expires...
    Trigger = type(trigger)
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)
    automation_handle_event(latest_event(make_task()))
    assert Alert.objects.count() == 2  # still cached
    settings.AUTOMATION_TRIGGER_CACHE_SECONDS = 0
    automation_handle_event(latest_event(make_task()))
    assert Alert.objects.count() == 2

    # ...and one made in this process through a service or a save applies to the next event.
    settings.AUTOMATION_TRIGGER_CACHE_SECONDS = 60
    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)
    triggers_set_enabled(trigger_ids=[trigger.pk], enabled=True)
    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)
    automation_handle_event(latest_event(make_task()))
    assert Alert.objects.count() == 3
    trigger.refresh_from_db()
    trigger.predicate = 'task_type == "other"'
    trigger.save()
    automation_handle_event(latest_event(make_task()))
    assert Alert.objects.count() == 3


def test_a_trigger_rolled_back_is_never_served_from_the_cache(make_task, settings):
    from django.db import transaction

    settings.AUTOMATION_TRIGGER_CACHE_SECONDS = 60
    with pytest.raises(RuntimeError), transaction.atomic():
        trigger_create(
            name="phantom",
            event_type="TaskCreated",
            actions=[{"type": "emit_alert", "params": {"message": "x"}}],
        )
        automation_handle_event(latest_event(make_task()))
        raise RuntimeError("roll back")
    automation_handle_event(latest_event(make_task()))
    assert not Alert.objects.exists()


def test_a_concurrent_modification_is_retried_not_recorded(make_task, monkeypatch):
    from automation.actions import update_task_state
    from polaris.errors import ConcurrentModification

    def raced(**kwargs):
        raise ConcurrentModification()

    monkeypatch.setattr(update_task_state, "task_transition", raced)
    trigger_create(
        name="auto-start",
        event_type="TaskCreated",
        actions=[{"type": "update_task_state", "params": {"target_state": "in_progress"}}],
    )
    event = latest_event(make_task())
    with pytest.raises(ConcurrentModification):
        automation_handle_event(event)


def test_counts_of_a_burst_are_published_without_waiting_for_another_event(
    make_task, django_capture_on_commit_callbacks
):
    from tests.support.processes import wait_until

    trigger = trigger_create(name="hit", event_type="TaskCreated")
    labels = {"trigger_id": str(trigger.pk), "outcome": "matched"}
    automation_metrics_flush()
    before = REGISTRY.get_sample_value("automation_trigger_evaluations_total", labels) or 0
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):  # the first may publish at once; the rest wait for the timer
            automation_handle_event(latest_event(make_task()))
    wait_until(
        lambda: REGISTRY.get_sample_value("automation_trigger_evaluations_total", labels) == before + 3,
        timeout=3,
    )


def test_an_alert_only_trigger_runs_without_a_savepoint_and_still_only_once(
    make_task, django_assert_num_queries, monkeypatch, settings
):
    """Its alert and execution row are one unit with the event: a second run of the pair fails the
    event (for the dispatcher to find it handled) instead of writing a second alert."""
    from django.db import IntegrityError, transaction

    trigger_create(
        name="a", event_type="TaskCreated", actions=[{"type": "emit_alert", "params": {"message": "m"}}]
    )
    from automation import ruleset

    monkeypatch.setattr(ruleset, "_uncommitted_changes", False)  # as if committed: the ruleset is cached
    settings.AUTOMATION_TRIGGER_CACHE_SECONDS = 60
    event = latest_event(make_task())
    automation_handle_event(event)  # loads the ruleset
    TriggerExecution.objects.all().delete()
    Alert.objects.all().delete()
    with django_assert_num_queries(2):  # the alert and the execution row: no SAVEPOINT/RELEASE
        automation_handle_event(event)
    with pytest.raises(IntegrityError), transaction.atomic():
        automation_handle_event(event)
    assert Alert.objects.count() == 1
    assert TriggerExecution.objects.get(event=event).outcome == "matched"
