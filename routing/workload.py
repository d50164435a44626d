"""The workload of an agency, for its supervisors: per worker (open, weighted load from the counters;
overdue, at risk, oldest open age from the open tasks), the unassigned queue by age, totals by service area.

Bounded by the agency's open tasks, never its history: three statements, whatever the agency's size. One
pass over its open tasks (the open tasks' covering index, ``task_open_workload_idx``) grouped in SQL, with
the at-risk SLA records joined in the same pass; the unassigned queue's own rows (the same index, no
assignee); the staff with their counters. At risk is the SLA app's own rule, through the workflow's
extension registry (``task_relations``: routing does not import sla).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from polaris.access import is_admin, is_agent
from polaris.accounts.models import Agency, User
from polaris.errors import NotFound, PermissionDenied, ValidationFailed
from workflow import extensions
from workflow.models import Task

from .decide import OPEN_STATES
from .selectors import staff_of

# The unassigned queue's age buckets: (name, lower bound), youngest first.
AGE_BUCKETS = (
    ("under_1h", timedelta(0)),
    ("1h_to_1d", timedelta(hours=1)),
    ("1d_to_3d", timedelta(days=1)),
    ("3d_to_7d", timedelta(days=3)),
    ("over_7d", timedelta(days=7)),
)


def workload_agency(*, user: User | None, agency_id: Any) -> Agency:
    """The agency whose workload ``user`` may read: an admin names it (``?agency=``), staff read their own
    (an agent read-only, like every list of their agency's tasks); clients are refused."""
    if is_admin(user):
        if agency_id is None:
            # Staff default to their own agency; an admin has none (the parameter's description says so).
            raise ValidationFailed(details={"agency": ["This field is required."]})
        agency = Agency.objects.filter(pk=agency_id).first()
        if agency is None:
            raise NotFound("Agency not found.")
        return agency
    if not is_agent(user):
        raise PermissionDenied("The workload is for administrators and agency staff.")
    assert user is not None
    if agency_id is not None and str(agency_id) != str(user.agency_id):
        raise NotFound("Agency not found.")
    agency = user.agency
    assert agency is not None  # is_agent: staff always have one
    return agency


def _bucket_counts(now: datetime) -> dict[str, Count]:
    """A filtered count per age bucket (by ``created_at``), for one pass over the open tasks."""
    counts = {}
    for index, (name, lower) in enumerate(AGE_BUCKETS):
        condition = Q(created_at__lte=now - lower)
        if index + 1 < len(AGE_BUCKETS):
            condition &= Q(created_at__gt=now - AGE_BUCKETS[index + 1][1])
        counts[name] = Count("id", filter=condition)
    return counts


def _age(now: datetime, instant: datetime | None) -> int | None:
    return int((now - instant).total_seconds()) if instant else None


def workload(*, agency: Agency, now: datetime | None = None) -> dict[str, Any]:
    """The figures of the workload page and endpoint (see the module docstring)."""
    now = now or timezone.now()
    open_tasks = Task.objects.filter(agency_id=agency.pk, state__in=OPEN_STATES)
    # One pass over the agency's open tasks (an index-only scan of the open tasks' index when the table is
    # vacuumed), grouped by (assignee, service area), with the at-risk SLA records joined in the same pass:
    # the per-worker and per-area figures are sums of these few hundred groups.
    at_risk: dict[str, Count] = {}
    at_risk_relation = extensions.task_relations.get("sla_at_risk")
    if at_risk_relation is not None:
        open_tasks = open_tasks.annotate(sla_at_risk=at_risk_relation(now))
        at_risk["at_risk"] = Count("sla_at_risk")
    groups = (
        open_tasks.values("assignee_id", "service_area")
        .annotate(
            open=Count("id"),
            overdue=Count("id", filter=Q(due_at__lt=now)),
            oldest=Min("created_at"),
            **at_risk,
        )
        .order_by()
    )
    per_worker: dict[Any, dict[str, Any]] = {}
    areas: dict[str, dict[str, Any]] = {}
    for group in groups:
        area = areas.setdefault(
            group["service_area"],
            {"service_area": group["service_area"], "open": 0, "unassigned": 0, "overdue": 0},
        )
        area["open"] += group["open"]
        area["overdue"] += group["overdue"]
        if group["assignee_id"] is None:
            area["unassigned"] += group["open"]
            continue
        target = per_worker.setdefault(group["assignee_id"], {"overdue": 0, "at_risk": 0, "oldest": None})
        target["overdue"] += group["overdue"]
        target["at_risk"] += group.get("at_risk", 0)
        if target["oldest"] is None or group["oldest"] < target["oldest"]:
            target["oldest"] = group["oldest"]
    # The unassigned queue by age: its own rows only (the index's leading columns: agency, no assignee).
    queue = (
        Task.objects.filter(agency_id=agency.pk, state__in=OPEN_STATES, assignee__isnull=True)
        .order_by()
        .aggregate(total=Count("id"), oldest=Min("created_at"), **_bucket_counts(now))
    )
    unassigned = {name: queue[name] for name in ("total", *(name for name, _ in AGE_BUCKETS))}
    unassigned["oldest_age_seconds"] = _age(now, queue["oldest"])
    workers = []
    rows = (
        staff_of(agency.pk)
        .values_list(
            "id",
            "username",
            "role",
            "worker_profile__away",
            "worker_profile__delegate_id",
            "worker_profile__capacity",
            "worker_load__open_tasks",
            "worker_load__weighted_load",
        )
        .order_by("username")
    )
    for user_id, username, role, away, delegate, capacity, open_count, weighted in rows:
        facts = per_worker.get(user_id, {})
        oldest = facts.get("oldest")
        workers.append(
            {
                "user": user_id,
                "username": username,
                "role": role,
                "open": open_count or 0,
                "weighted_load": weighted or 0,
                "capacity": capacity,
                "overdue": facts.get("overdue", 0),
                "at_risk": facts.get("at_risk", 0),
                "oldest_open_age_seconds": _age(now, oldest),
                "away": bool(away),
                "delegate": delegate,
            }
        )
    return {
        "agency": agency.pk,
        "generated_at": now,
        "workers": workers,
        "unassigned": unassigned,
        "service_areas": [areas[name] for name in sorted(areas)],
    }
