"""The workload of an agency, for its supervisors: per worker (open, weighted load from the counters;
overdue, at risk, oldest open age from the open tasks), the unassigned queue by age, totals by service area.

Bounded by the agency's open tasks, never its history: every task query filters ``agency`` and the open
states (the ``(agency, state)`` index), and groups in SQL. At risk is the SLA app's own filter, through the
workflow's extension registry (routing does not import sla).
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
    # One pass over the agency's open tasks, grouped by (assignee, service area): the per-worker, the
    # per-area and the unassigned figures are sums of these few hundred groups.
    groups = (
        open_tasks.values("assignee_id", "service_area")
        .annotate(
            open=Count("id"),
            overdue=Count("id", filter=Q(due_at__lt=now)),
            oldest=Min("created_at"),
            **_bucket_counts(now),
        )
        .order_by()
    )
    per_worker: dict[Any, dict[str, Any]] = {}
    areas: dict[str, dict[str, Any]] = {}
    unassigned: dict[str, Any] = {"total": 0, "oldest": None, **{name: 0 for name, _ in AGE_BUCKETS}}
    for group in groups:
        area = areas.setdefault(
            group["service_area"],
            {"service_area": group["service_area"], "open": 0, "unassigned": 0, "overdue": 0},
        )
        area["open"] += group["open"]
        area["overdue"] += group["overdue"]
        if group["assignee_id"] is None:
            area["unassigned"] += group["open"]
            unassigned["total"] += group["open"]
            for name, _ in AGE_BUCKETS:
                unassigned[name] += group[name]
            target = unassigned
        else:
            target = per_worker.setdefault(group["assignee_id"], {"overdue": 0, "oldest": None})
            target["overdue"] += group["overdue"]
        if group["oldest"] is not None and (target["oldest"] is None or group["oldest"] < target["oldest"]):
            target["oldest"] = group["oldest"]
    unassigned["oldest_age_seconds"] = _age(now, unassigned.pop("oldest"))
    at_risk: dict[int, int] = {}
    sla_filter = extensions.task_filters.get("sla_status")
    if sla_filter is not None:
        risky = sla_filter(open_tasks.filter(assignee__isnull=False), "at_risk")
        at_risk = dict(
            risky.values("assignee_id").annotate(n=Count("id")).order_by().values_list("assignee_id", "n")
        )
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
                "at_risk": at_risk.get(user_id, 0),
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
