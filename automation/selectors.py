"""Reads for the automation API and admin, scoped like the rest of Polaris."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from outbox.models import OutboxEvent
from polaris.access import agency_scope, is_staff_for, manager_scope
from polaris.accounts.models import User
from polaris.errors import NotFound

from .models import Alert, Trigger, TriggerTimer
from .ruleset import timers_possible


def trigger_queryset(*, user: User | None = None) -> QuerySet[Trigger]:
    """The triggers ``user`` manages: admins (and the system) all; a supervisor their agency's (global
    triggers are the admins'); anyone else is refused (403)."""
    agency_id = manager_scope(user, "Only administrators and supervisors may manage triggers.")
    triggers = Trigger.objects.all()
    return triggers if agency_id is None else triggers.filter(agency_id=agency_id)


def trigger_list(*, user: User | None = None, filters: dict[str, Any] | None = None) -> QuerySet[Trigger]:
    """The triggers in ``user``'s scope, in evaluation order, optionally filtered by ``event_type`` and
    ``enabled``."""
    triggers = trigger_queryset(user=user).order_by("position", "id")
    for name in ("event_type", "enabled"):
        if filters and filters.get(name) is not None:
            triggers = triggers.filter(**{name: filters[name]})
    return triggers


def trigger_get(*, trigger_id: Any, user: User | None = None) -> Trigger:
    """One trigger in ``user``'s scope (out of scope: 404)."""
    try:
        return trigger_queryset(user=user).get(pk=int(trigger_id))
    except (ValueError, TypeError, Trigger.DoesNotExist):
        raise NotFound("Trigger not found.") from None


def event_get(*, event_id: Any, user: User | None = None) -> OutboxEvent:
    """A stored event for a dry-run: admins any; a supervisor only their agency's (others: 404)."""
    events = OutboxEvent.objects.all()
    agency_id = manager_scope(user)
    if agency_id is not None:
        events = events.filter(payload__agency_id=str(agency_id))
    try:
        return events.get(pk=uuid.UUID(str(event_id)))
    except (ValueError, TypeError, OutboxEvent.DoesNotExist):
        raise NotFound("Event not found.") from None


def alert_queryset(*, user: User | None) -> QuerySet[Alert]:
    """Admins (and the system) see every alert; agency agents their agency's; clients none (403)."""
    alerts = Alert.objects.select_related("acknowledged_by").order_by("-created_at", "-id")
    agency_id = agency_scope(user, "Clients have no access to alerts.")
    return alerts if agency_id is None else alerts.filter(agency_id=agency_id)


def alert_get(*, user: User | None, alert_id: Any) -> Alert:
    try:
        return alert_queryset(user=user).get(pk=int(alert_id))
    except (ValueError, TypeError, Alert.DoesNotExist):
        raise NotFound("Alert not found.") from None


def task_queryset_with_timers(queryset: QuerySet) -> QuerySet:
    """Task lists fetch each page's timers in one query (the ``timers`` block); none while no task can
    have a timer (``ruleset.timers_possible``)."""
    if not timers_possible():
        return queryset
    timers = TriggerTimer.objects.select_related("trigger").order_by("due_at", "id")
    return queryset.prefetch_related(Prefetch("timers", queryset=timers))


def task_timers_block(task: Any, viewer: User | None = None) -> list[dict[str, Any]]:
    """The ``timers`` block of a task's representation: its timed triggers' timers, by due time.

    Triggers are internal configuration: admins and the task's agency staff (and the system, ``None``)
    see the timers with their triggers' names; anyone else — a client — sees an empty list.
    """
    if not is_staff_for(task, viewer):
        return []
    if not _timers_prefetched(task) and not timers_possible():
        return []  # no timed trigger, no timer: skip the query (2 ms of a transition)
    return [
        {
            "id": str(timer.pk),
            "trigger_id": timer.trigger_id,
            "trigger": timer.trigger.name,
            "state": timer.state,
            "due_at": timer.due_at.isoformat(),
            "fired_at": timer.fired_at.isoformat() if timer.fired_at else None,
            "cancelled_at": timer.cancelled_at.isoformat() if timer.cancelled_at else None,
        }
        for timer in task.timers.all()
    ]


def _timers_prefetched(task: Any) -> bool:
    return "timers" in getattr(task, "_prefetched_objects_cache", {})
