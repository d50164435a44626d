"""Making a plan from a template: the plan and every task of the template's latest version, their
dependencies and their events, in one transaction and a fixed number of statements (multi-row inserts).

A task whose blueprint depends on others is *waiting*: it stays ``new`` with ``waiting_on`` (the ids of the
tasks it waits for) and no due date; ``careplans.readiness`` makes it ready through dispatch. A task with no
predecessor is ready at once: its due date counts from now and its SLA clock starts.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from outbox.append import NewEvent, events_append
from outbox.events import EventContext
from polaris.accounts.models import Agency, User
from polaris.errors import ValidationFailed
from sla.clock import sla_records_start
from workflow.events import EventType, task_facts
from workflow.models import ActionPlan, Task, TaskChecklistItem
from workflow.services.action_plans import action_plan_insert
from workflow.services.approvals import approval_policy_validate
from workflow.services.checklists import checklist_items_for_new_tasks
from workflow.signals import tasks_created

from ..due_dates import CalendarCache
from ..models import PlanTemplateVersion, TaskDependency, TemplatedPlan, TemplatedTask
from ..selectors import plan_template_get


def task_created_event(
    task: Task, *, key: str, version: PlanTemplateVersion, context: EventContext
) -> NewEvent:
    """The ``TaskCreated`` of a template task: the task's facts, what it waits for, where it came from. The
    first event of the task's stream (its checklist's, if any, follows at sequence 2)."""
    return NewEvent(
        event_type=EventType.TASK_CREATED,
        aggregate_type=Task.aggregate_type,
        aggregate_id=task.pk,
        sequence=1,
        context=context,
        payload={
            **task_facts(task),
            "old_state": None,
            "new_state": task.state,
            "transition": "create",
            "waiting_on": [str(pk) for pk in task.waiting_on],
            "due_at": task.due_at.isoformat() if task.due_at else None,
            "template": {"id": version.template_id, "version": version.number, "key": key},
        },
    )


def plan_tasks_build(
    *,
    plan: ActionPlan,
    blueprints: list[dict[str, Any]],
    actor: User | None,
    now: Any,
    calendars: CalendarCache,
    existing: dict[str, Task] | None = None,
) -> tuple[list[Task], list[TaskDependency]]:
    """Unsaved tasks for ``blueprints`` (and their dependency rows) in ``plan``. ``existing``: the plan's
    tasks by key already there (a migration adding tasks): a dependency on a completed one is met."""
    existing = existing or {}
    calendars.preload((blueprint["task_type"], blueprint["service_area"]) for blueprint in blueprints)
    ids = {blueprint["key"]: uuid.uuid4() for blueprint in blueprints}
    by_key = {**{key: task.pk for key, task in existing.items()}, **ids}
    done = {task.pk for task in existing.values() if task.state in ("completed", "cancelled")}
    tasks, dependencies = [], []
    for blueprint in blueprints:
        predecessors = [by_key[key] for key in blueprint["depends_on"] if key in by_key]
        waiting_on = [pk for pk in predecessors if pk not in done]
        task = Task(
            id=ids[blueprint["key"]],
            title=blueprint["title"],
            description=blueprint["description"],
            task_type=blueprint["task_type"],
            service_area=blueprint["service_area"],
            priority=blueprint["priority"],
            client_id=plan.client_id,
            agency_id=plan.agency_id,
            action_plan=plan,
            created_by=actor,
            waiting_on=waiting_on,
            due_at=None
            if waiting_on
            else calendars.due_at(
                ready_at=now,
                hours=blueprint["due_in_business_hours"],
                task_type=blueprint["task_type"],
                service_area=blueprint["service_area"],
            ),
        )
        task._blueprint_key = blueprint["key"]  # type: ignore[attr-defined]
        tasks.append(task)
        dependencies += [TaskDependency(task_id=task.pk, predecessor_id=pk) for pk in predecessors]
    return tasks, dependencies


def plan_tasks_insert(
    *,
    plan: ActionPlan,
    tasks: list[Task],
    dependencies: list[TaskDependency],
    version: PlanTemplateVersion,
    context: EventContext,
    now: Any,
    calendars: CalendarCache,
    events: tuple[NewEvent, ...] | list[NewEvent] = (),
) -> None:
    """Insert the built tasks, their blueprint links, dependencies, ``TaskCreated`` events (followed, in the
    same statement, by the tasks' further ``events``) and the SLA records of the tasks that are ready (one
    statement each; the configs from ``calendars``, which ``plan_tasks_build`` filled)."""
    Task.objects.bulk_create(tasks)
    TemplatedTask.objects.bulk_create(
        TemplatedTask(
            task_id=task.pk,
            plan_id=plan.pk,
            key=task._blueprint_key,  # type: ignore[attr-defined]
            ready_at=None if task.waiting_on else now,
        )
        for task in tasks
    )
    TaskDependency.objects.bulk_create(dependencies)
    events_append(
        [
            *(
                task_created_event(task, key=task._blueprint_key, version=version, context=context)  # type: ignore[attr-defined]
                for task in tasks
            ),
            *events,
        ]
    )
    ready = [task for task in tasks if not task.waiting_on]
    calendars.preload((task.task_type, task.service_area) for task in ready)
    sla_records_start(tasks=ready, configs=calendars.configs, now=now)


def _plan_checklists(
    tasks: list[Task], version: PlanTemplateVersion, *, correlation_id: str | None
) -> tuple[list[TaskChecklistItem], list[NewEvent]]:
    """The blueprints' checklist items of the built tasks and their ``TaskChecklistItemsAdded`` (by the
    system, one per task with items; the tasks move to version 2 with their counters), to be inserted with
    the tasks."""
    checklists = {blueprint["key"]: blueprint.get("checklist") or [] for blueprint in version.blueprints}
    pairs = [
        (task, checklists[task._blueprint_key])  # type: ignore[attr-defined]
        for task in tasks
        if checklists.get(task._blueprint_key)  # type: ignore[attr-defined]
    ]
    return checklist_items_for_new_tasks(pairs, EventContext.build(correlation_id=correlation_id))


def _plan_extras_apply(
    plan: ActionPlan, items: list[TaskChecklistItem], version: PlanTemplateVersion
) -> None:
    """The checklist items (one INSERT) and the version's approval policy, checked again against the plan's
    agency (an approver listed when the template was written may have left it since: the plan is then
    refused, naming them)."""
    TaskChecklistItem.objects.bulk_create(items)
    if version.requires_approval:
        plan.approval_policy = approval_policy_validate(version.requires_approval, plan.agency_id)
        plan.save(update_fields=["approval_policy"])


@transaction.atomic
def plan_instantiate(
    *,
    actor: User | None,
    template_id: Any,
    client: User,
    agency: Agency,
    title: str = "",
    description: str = "",
    correlation_id: str | None = None,
) -> ActionPlan:
    """A draft plan for ``client`` with every task of the template's latest version, in one transaction.

    The template must be in the caller's scope (``NotFound``) and of the plan's agency
    (``ValidationFailed``); the plan's own rules apply (``action_plan_create``: staff of the agency, a
    linked client). Registered as ``workflow.extensions.plan_instantiators`` (``POST /action-plans``).
    The plan comes back with its tasks and approvals (none yet) loaded as written: rendering it reads
    nothing again.
    """
    template = plan_template_get(user=actor, template_id=template_id)
    if template.agency_id != agency.pk:
        raise ValidationFailed(details={"template": ["The template belongs to another agency."]})
    plan = action_plan_insert(
        actor=actor,
        title=title or template.name,
        description=description,
        client=client,
        agency=agency,
        correlation_id=correlation_id,
    )
    version_id = template.versions.filter(number=template.latest_version).values_list("pk", flat=True)[0]
    # The link first: its foreign key share-locks the version row, so an edit of the version either
    # committed before (and is read below) or waits and then sees the version in use.
    TemplatedPlan.objects.create(plan=plan, version_id=version_id)
    version = PlanTemplateVersion.objects.get(pk=version_id)
    now = timezone.now()
    context = EventContext.build(actor=actor, correlation_id=correlation_id)
    calendars = CalendarCache()
    tasks, dependencies = plan_tasks_build(
        plan=plan, blueprints=version.blueprints, actor=actor, now=now, calendars=calendars
    )
    items, checklist_events = _plan_checklists(tasks, version, correlation_id=correlation_id)
    plan_tasks_insert(
        plan=plan,
        tasks=tasks,
        dependencies=dependencies,
        version=version,
        context=context,
        now=now,
        calendars=calendars,
        events=checklist_events,
    )
    _plan_extras_apply(plan, items, version)
    # Routing and whoever else acts on new tasks, as ``task_create`` lets them for one (in this transaction).
    tasks_created.send(sender=Task, tasks=tasks, context=context)
    _loaded(plan, "tasks", tasks)
    _loaded(plan, "approvals", [])
    return plan


def _loaded(plan: ActionPlan, relation: str, rows: list[Any]) -> None:
    """Mark ``plan.<relation>`` as loaded with ``rows`` (what a ``prefetch_related`` would have read)."""
    queryset = getattr(plan, relation).all()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    cache = plan.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[relation] = queryset
