"""Moving running plans to another version of their template: a preview (what would change, per plan) and
the application (exactly that, plan by plan, in batches), computed by one function so they agree.

Per plan, against the tasks it has (by blueprint key): a key of the new version the plan has no task for is
a task to **add** (waiting on its predecessors that are not done yet); an open task whose key the new version
drops is a task to **cancel**; an open task already ready whose blueprint's ``due_in_business_hours`` changed
is **re-dated** (from the moment it became ready, on its calendar). Completed (and cancelled) tasks are never
touched. Changes to an existing task's other fields or dependencies are not carried over (see
docs/careplans.md). Each plan moves in its own transaction with its row locked: a plan no longer on
``from_version`` (moved by an earlier or concurrent application) is skipped, so re-applying changes nothing
twice. Each change is an event: ``TaskCreated``, ``TaskStateChanged`` (cancelled), ``TaskUpdated``
(``due_at``), and the plan's ``ActionPlanTemplateMigrated``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from outbox.append import aggregate_advance
from outbox.events import EventContext
from polaris.accounts.models import User
from polaris.audit.services import audit_record
from polaris.errors import ValidationFailed
from workflow.events import action_plan_facts
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
from workflow.services.tasks import task_transition, task_update

from ..due_dates import CalendarCache
from ..events import CarePlanEventType
from ..models import (
    PlanMigration,
    PlanMigrationState,
    PlanTemplate,
    PlanTemplateVersion,
    TemplatedPlan,
    TemplatedTask,
)
from .instantiation import plan_tasks_build, plan_tasks_insert

MAX_PLANS = 10_000
BATCH_SIZE = 100
CLOSED = (TaskState.COMPLETED, TaskState.CANCELLED)


@dataclass
class PlanChanges:
    """What moving one plan does: tasks to add (keys), cancel and re-date (task, key, old and new due)."""

    plan: Any
    add: list[str] = field(default_factory=list)
    cancel: list[tuple[Any, str]] = field(default_factory=list)
    redate: list[tuple[Any, str, datetime | None, datetime | None]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": str(self.plan),
            "add": [{"task": None, "key": key} for key in self.add],
            "cancel": [{"task": str(task), "key": key} for task, key in self.cancel],
            "redate": [
                {"task": str(task), "key": key, "old_due_at": old, "new_due_at": new}
                for task, key, old, new in self.redate
            ],
        }


@dataclass(frozen=True)
class _TaskRow:
    task_id: Any
    key: str
    state: str
    due_at: datetime | None
    ready_at: datetime | None
    task_type: str
    service_area: str


def _plans(template: PlanTemplate, version: PlanTemplateVersion, plan_filter: dict[str, Any]) -> QuerySet:
    """The links of the plans on ``version`` the filter selects (archived plans only when asked)."""
    links = TemplatedPlan.objects.filter(version=version, plan__agency_id=template.agency_id)
    states = plan_filter.get("state") or [ActionPlanState.DRAFT, ActionPlanState.ACTIVE]
    links = links.filter(plan__state__in=states)
    if plan_filter.get("plan_ids"):
        links = links.filter(plan_id__in=plan_filter["plan_ids"])
    if plan_filter.get("client"):
        links = links.filter(plan__client_id=plan_filter["client"])
    return links


def _rows(plan_ids: QuerySet | list[Any]) -> dict[Any, list[_TaskRow]]:
    rows: dict[Any, list[_TaskRow]] = {}
    fields = ("plan_id", "task_id", "key", "task__state", "task__due_at", "ready_at", "task__task_type")
    links = TemplatedTask.objects.filter(plan_id__in=plan_ids).order_by("plan_id", "key")
    for plan_id, task_id, key, state, due_at, ready_at, task_type, area in links.values_list(
        *fields, "task__service_area"
    ):
        rows.setdefault(plan_id, []).append(_TaskRow(task_id, key, state, due_at, ready_at, task_type, area))
    return rows


def plan_changes(
    *,
    plan_id: Any,
    tasks: list[_TaskRow],
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    calendars: CalendarCache,
) -> PlanChanges:
    """The one rule of a move, for the preview and the application alike (see the module docstring)."""
    changes = PlanChanges(plan=plan_id)
    have = {row.key for row in tasks}
    changes.add = [key for key in new if key not in have]
    for row in tasks:
        if row.state in CLOSED:
            continue
        if row.key not in new:
            changes.cancel.append((row.task_id, row.key))
            continue
        hours = new[row.key]["due_in_business_hours"]
        if row.ready_at is None or hours == old.get(row.key, {}).get("due_in_business_hours"):
            continue
        due = calendars.due_at(
            ready_at=row.ready_at, hours=hours, task_type=row.task_type, service_area=row.service_area
        )
        if due != row.due_at:
            changes.redate.append((row.task_id, row.key, row.due_at, due))
    return changes


def _versions(template: PlanTemplate, from_version: int, to_version: int) -> tuple[PlanTemplateVersion, ...]:
    if from_version == to_version:
        raise ValidationFailed(details={"to_version": ["Must differ from from_version."]})
    versions = {v.number: v for v in template.versions.filter(number__in=[from_version, to_version])}
    missing = [n for n in (from_version, to_version) if n not in versions]
    if missing:
        raise ValidationFailed(details={"version": [f"No such version: {', '.join(map(str, missing))}."]})
    return versions[from_version], versions[to_version]


def _keyed(version: PlanTemplateVersion) -> dict[str, dict[str, Any]]:
    return {blueprint["key"]: blueprint for blueprint in version.blueprints}


def _plan_ids(links: QuerySet) -> list[Any]:
    plan_ids = list(links.order_by("plan_id").values_list("plan_id", flat=True)[: MAX_PLANS + 1])
    if len(plan_ids) > MAX_PLANS:
        raise ValidationFailed(
            details={"filter": [f"More than {MAX_PLANS} plans: narrow the filter (plan_ids, client, state)."]}
        )
    return plan_ids


def migration_preview(
    *, template: PlanTemplate, from_version: int, to_version: int, plan_filter: dict[str, Any]
) -> list[PlanChanges]:
    """What applying would do, per plan (read-only; one read of every selected plan's tasks)."""
    source, target = _versions(template, from_version, to_version)
    old, new, calendars = _keyed(source), _keyed(target), CalendarCache()
    plan_ids = _plan_ids(_plans(template, source, plan_filter))
    rows = _rows(plan_ids)
    return [
        plan_changes(plan_id=pk, tasks=rows.get(pk, []), old=old, new=new, calendars=calendars)
        for pk in plan_ids
    ]


def _plan_move(
    *,
    plan_id: Any,
    source: PlanTemplateVersion,
    target: PlanTemplateVersion,
    actor: User | None,
    migration: PlanMigration,
    calendars: CalendarCache,
) -> PlanChanges | None:
    """Move one plan (inside the batch's transaction); ``None`` when it is no longer on ``source``."""
    plan = ActionPlan.objects.select_for_update().get(pk=plan_id)
    link = TemplatedPlan.objects.select_for_update().get(plan_id=plan_id)
    if link.version_id != source.pk:
        return None
    changes = plan_changes(
        plan_id=plan_id,
        tasks=_rows([plan_id]).get(plan_id, []),
        old=_keyed(source),
        new=_keyed(target),
        calendars=calendars,
    )
    context = EventContext.build(actor=actor)
    if changes.add:
        now = timezone.now()
        existing = {row.key: row for row in TemplatedTask.objects.filter(plan_id=plan_id)}
        tasks_by_key = {key: Task.objects.get(pk=row.task_id) for key, row in existing.items()}
        blueprints = [blueprint for blueprint in target.blueprints if blueprint["key"] in changes.add]
        tasks, dependencies = plan_tasks_build(
            plan=plan, blueprints=blueprints, actor=actor, now=now, calendars=calendars, existing=tasks_by_key
        )
        plan_tasks_insert(
            plan=plan,
            tasks=tasks,
            dependencies=dependencies,
            version=target,
            context=context,
            now=now,
            calendars=calendars,
        )
    for task_id, _key in changes.cancel:
        task_transition(
            task_id=task_id,
            target_state=TaskState.CANCELLED,
            actor=actor,
            reason=f"Not in version {target.number} of the plan's template.",
        )
    for task_id, _key, _old, due in changes.redate:
        task_update(task_id=task_id, actor=actor, changes={"due_at": due})
    link.version = target
    link.save(update_fields=["version"])
    plan.version += 1
    plan.updated_at = timezone.now()
    aggregate_advance(
        plan,
        event_type=CarePlanEventType.ACTION_PLAN_TEMPLATE_MIGRATED,
        aggregate_type=ActionPlan.aggregate_type,
        columns=("version", "updated_at"),
        context=context,
        payload={
            **action_plan_facts(plan),
            "template_id": source.template_id,
            "from_version": source.number,
            "to_version": target.number,
            "migration_id": migration.pk,
            "added": changes.add,
            "cancelled": [key for _, key in changes.cancel],
            "redated": [key for _, key, _, _ in changes.redate],
        },
    )
    return changes


def migration_apply(
    *,
    actor: User | None,
    template: PlanTemplate,
    from_version: int,
    to_version: int,
    plan_filter: dict[str, Any],
) -> tuple[PlanMigration, list[PlanChanges]]:
    """Apply the move to every selected plan, ``BATCH_SIZE`` plans per transaction; returns the migration
    row (``done`` with its counts) and what each moved plan got. Interrupted, it is simply posted again."""
    source, target = _versions(template, from_version, to_version)
    plan_ids = _plan_ids(_plans(template, source, plan_filter))
    with transaction.atomic():
        migration = PlanMigration.objects.create(
            template=template,
            from_version=from_version,
            to_version=to_version,
            plan_filter=plan_filter,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="plan_template.migration_applied",
            obj=template,
            after={
                "migration": migration.pk,
                "from_version": from_version,
                "to_version": to_version,
                "filter": plan_filter,
                "plans": len(plan_ids),
            },
        )
    applied: list[PlanChanges] = []
    calendars = CalendarCache()
    for start in range(0, len(plan_ids), BATCH_SIZE):
        with transaction.atomic():
            for plan_id in plan_ids[start : start + BATCH_SIZE]:
                changes = _plan_move(
                    plan_id=plan_id,
                    source=source,
                    target=target,
                    actor=actor,
                    migration=migration,
                    calendars=calendars,
                )
                if changes is not None:
                    applied.append(changes)
    migration.plans_migrated = len(applied)
    migration.tasks_added = sum(len(c.add) for c in applied)
    migration.tasks_cancelled = sum(len(c.cancel) for c in applied)
    migration.tasks_redated = sum(len(c.redate) for c in applied)
    migration.state = PlanMigrationState.DONE
    migration.finished_at = timezone.now()
    migration.save()
    return migration, applied
