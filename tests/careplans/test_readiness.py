"""Readiness through dispatch: a predecessor's end releases its dependents once, with causation, due dates
on the task's calendar (weekends, holidays), and the per-blueprint rule for a cancelled predecessor."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from careplans.models import TemplatedTask
from careplans.readiness import task_readiness_handle
from careplans.services.instantiation import plan_instantiate
from outbox.models import HandledEvent, OutboxEvent
from sla.configs import sla_config_create
from sla.models import BusinessCalendar, SLAConfig, SLARecord
from tests.careplans.conftest import dispatch
from workflow.models import Task, TaskChecklistItem
from workflow.services.checklists import checklist_item_set_done
from workflow.services.tasks import task_assign, task_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan_tasks(make_template, agent, client_user, agency):
    def make(template=None):
        plan = plan_instantiate(
            actor=agent, template_id=(template or make_template()).pk, client=client_user, agency=agency
        )
        return {link.key: link.task_id for link in TemplatedTask.objects.filter(plan=plan)}

    return make


def finish(task_id, agent, target="completed"):
    """Assign, start and complete (or cancel) a task; returns its last event."""
    if target == "cancelled":
        return task_transition(task_id=task_id, target_state="cancelled", actor=agent)[1]
    task_assign(task_id=task_id, actor=agent, assignee=agent)
    task_transition(task_id=task_id, target_state="in_progress", actor=agent)
    for item in TaskChecklistItem.objects.filter(task_id=task_id, required=True):  # the blueprint's steps
        checklist_item_set_done(task_id=task_id, item_id=item.pk, done=True, actor=agent)
    return task_transition(task_id=task_id, target_state="completed", actor=agent)[1]


def events_of(task_id, event_type):
    return list(OutboxEvent.objects.filter(aggregate_id=task_id, event_type=event_type).order_by("sequence"))


def test_completing_a_predecessor_makes_its_dependent_ready_through_dispatch(plan_tasks, agent):
    tasks = plan_tasks()
    completed = finish(tasks["intake"], agent)
    assert Task.objects.get(pk=tasks["assessment"]).waiting_on == [tasks["intake"]]  # not before dispatch
    dispatch()
    assessment = Task.objects.get(pk=tasks["assessment"])
    assert assessment.waiting_on == []
    ready_at = TemplatedTask.objects.get(task_id=assessment.pk).ready_at
    assert assessment.due_at == ready_at + timedelta(hours=8)  # no calendar: 24x7
    (ready,) = events_of(assessment.pk, "TaskReady")
    assert ready.causation_id == completed.id
    assert ready.depth == completed.depth
    assert ready.sequence == 2
    assert ready.payload["predecessor_id"] == str(tasks["intake"])
    # Its SLA clock starts when it becomes ready (the built-in assessment config), not at creation.
    assert SLARecord.objects.get(task=assessment).started_at == ready_at
    # Now it can start.
    task_assign(task_id=assessment.pk, actor=agent, assignee=agent)
    task_transition(task_id=assessment.pk, target_state="in_progress", actor=agent)
    # Nothing else moved: housing and benefits still wait for the assessment.
    assert Task.objects.get(pk=tasks["housing"]).waiting_on == [assessment.pk]


def test_redelivery_changes_nothing_twice(plan_tasks, agent):
    tasks = plan_tasks()
    completed = finish(tasks["intake"], agent)
    dispatch()
    version = Task.objects.get(pk=tasks["assessment"]).version
    task_readiness_handle(completed)  # a redelivery that got past the ledger: the state check holds
    task_readiness_handle(completed)
    dispatch()  # and through the dispatcher: the ledger skips it
    assert Task.objects.get(pk=tasks["assessment"]).version == version
    assert len(events_of(tasks["assessment"], "TaskReady")) == 1
    assert HandledEvent.objects.filter(handler="careplans.readiness", event=completed).count() == 1


def test_a_task_with_two_predecessors_becomes_ready_after_the_second(plan_tasks, agent):
    tasks = plan_tasks()
    finish(tasks["intake"], agent)
    dispatch()
    finish(tasks["assessment"], agent)
    dispatch()
    finish(tasks["housing"], agent)
    dispatch()
    review = Task.objects.get(pk=tasks["review"])
    assert review.waiting_on == [tasks["benefits"]]
    assert review.due_at is None
    (met,) = events_of(review.pk, "TaskDependencyMet")
    assert met.payload["waiting_on"] == [str(tasks["benefits"])]
    last = finish(tasks["benefits"], agent)
    dispatch()
    review.refresh_from_db()
    assert review.waiting_on == []
    assert review.due_at is not None
    (ready,) = events_of(review.pk, "TaskReady")
    assert ready.causation_id == last.id


def test_a_cancelled_predecessor_follows_each_blueprints_rule(plan_tasks, agent):
    tasks = plan_tasks()
    finish(tasks["intake"], agent)
    dispatch()
    cancelled = finish(tasks["assessment"], agent, target="cancelled")
    dispatch()
    # housing: on_predecessor_cancelled "ready" (the default) → ready.
    housing = Task.objects.get(pk=tasks["housing"])
    assert housing.state == "new"
    assert housing.waiting_on == []
    assert events_of(housing.pk, "TaskReady")[0].payload["predecessor_state"] == "cancelled"
    # benefits: "cancel" → cancelled too, caused by the assessment's cancellation.
    benefits = Task.objects.get(pk=tasks["benefits"])
    assert benefits.state == "cancelled"
    (moved,) = events_of(benefits.pk, "TaskStateChanged")
    assert moved.causation_id == cancelled.id
    # review ("ready"): the cancelled benefits check counts as done; it still waits for housing.
    assert Task.objects.get(pk=tasks["review"]).waiting_on == [housing.pk]


@pytest.fixture
def london_calendar_for_assessments(db):
    calendar = BusinessCalendar.objects.create(
        name="London office", time_zone="Europe/London", holidays=["2026-12-21"]
    )
    # The built-in assessment config (data migration), put on the office calendar; created if flushed.
    config = SLAConfig.objects.filter(task_type="assessment", service_area="", active=True).first()
    if config is None:
        return sla_config_create(
            actor=None, name="Assessments", task_type="assessment", target_minutes=600, calendar=calendar
        )
    config.calendar = calendar
    config.save(update_fields=["calendar"])
    return config


def test_due_dates_count_business_hours_across_a_weekend_and_a_holiday(
    plan_tasks, agent, london_calendar_for_assessments
):
    tasks = plan_tasks()
    friday_15 = datetime(2026, 12, 18, 15, 0, tzinfo=UTC)  # GMT: London time is UTC
    with time_machine.travel(friday_15, tick=False):
        completed = finish(tasks["intake"], agent)
        task_readiness_handle(completed)
    assessment = Task.objects.get(pk=tasks["assessment"])
    # 8 business hours: Friday 15-17 (2), the weekend and Monday's holiday skipped, Tuesday 9-15 (6).
    assert assessment.due_at == datetime(2026, 12, 22, 15, 0, tzinfo=UTC)
    record = SLARecord.objects.get(task=assessment)
    assert record.started_at == friday_15


def test_a_ready_task_with_no_due_hours_has_no_due_date(plan_tasks, agent):
    tasks = plan_tasks()
    finish(tasks["intake"], agent)
    dispatch()
    finish(tasks["assessment"], agent)
    dispatch()
    housing = Task.objects.get(pk=tasks["housing"])
    assert housing.waiting_on == []
    assert housing.due_at is None
