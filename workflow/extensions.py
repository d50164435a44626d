"""Hooks through which other apps extend the task representation without workflow importing them.

``sla`` registers, in its ``AppConfig.ready()``:
- a field: ``task_fields["sla"] = func(task, viewer) -> JSON-able`` (``viewer``: the user the
  representation is for, ``None`` for the system), so a field can show a client less than staff;
  prefetch via ``task_queryset_hooks``;
- a list filter: ``task_filters["sla_status"] = func(queryset, value) -> queryset``
  (raise ``polaris.errors.ValidationFailed`` for a bad value), taking the values ``SLA_STATUS_VALUES``;
- a relation to count: ``task_relations["sla_at_risk"] = func(now) -> FilteredRelation``, the task's
  SLA record only while it is at risk at ``now`` (the same rule as the filter's ``at_risk``), so a grouped
  read of tasks counts them in its own pass (``Count`` of the annotated relation; routing's workload);
- a row locked with every task write: ``task_locked_rows`` (its SLA record).

``careplans`` registers ``plan_instantiators``: how ``POST /action-plans`` with a ``template`` makes the plan.
``routing`` registers an assignment annotator: ``assignment_annotators`` holds
``func(task, old_assignee_id, new_assignee_id, context) -> dict`` whose result is merged into the payload of
a ``TaskAssigned`` event (the routing decision and its reasons, or a manual override of a routed task).
Annotations are staff-only: a client's projection of the event leaves out the ``routing`` key.

Event types are registered with the outbox (``outbox.events.event_types_register``), not here.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import FilteredRelation, Model, QuerySet

# The ``sla_status`` filter's values. The SLA app implements the filter; the values live here so the
# workflow API can declare them (list parameter, bulk ``filter``) without importing sla, and sla checks
# a value against this same tuple.
SLA_STATUS_VALUES = ("running", "paused", "met", "breached", "at_risk")

task_fields: dict[str, Callable[[Any, Any], Any]] = {}
task_filters: dict[str, Callable[[QuerySet, str], QuerySet]] = {}
task_relations: dict[str, Callable[[datetime], FilteredRelation]] = {}
task_queryset_hooks: list[Callable[[QuerySet], QuerySet]] = []
# A row of another app's model that a task write locks in its own compare-and-swap statement (one round
# trip fewer): ``(model, name of its field holding the task's id)``, at most one row per task, at most one
# registration. The row read (or None) is passed to that app's receivers of ``workflow.signals.task_changed``
# as the ``locked_rows`` argument; they run next in the same transaction.
task_locked_rows: list[tuple[type[Model], str]] = []

# Making a plan from a template (``POST /action-plans`` with ``template``), at most one registration (the
# ``careplans`` app's): ``func(*, actor, template_id, title, description, client, agency, correlation_id)``
# returns the plan, created with its tasks in the caller's transaction.
plan_instantiators: list[Callable[..., Any]] = []
# Extra payload of a TaskAssigned event (see the module docstring); called inside the edit's transaction.
assignment_annotators: list[Callable[[Any, Any, Any, Any], dict[str, Any]]] = []
