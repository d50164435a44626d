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


def _buckets(open_unassigned: Any, now: datetime) -> dict[str, int]:
    filters = {}
    for index, (name, lower) in enumerate(AGE_BUCKETS):
        condition = Q(created_at__lte=now - lower)
        if index + 1 < len(AGE_BUCKETS):
            condition &= Q(created_at__gt=now - AGE_BUCKETS[index + 1][1])
        filters[name] = Count("id", filter=condition)
    counts = open_unassigned.aggregate(total=Count("id"), oldest=Min("created_at"), **filters)
    oldest = counts.pop("oldest")
    counts["oldest_age_seconds"] = int((now - oldest).total_seconds()) if oldest else None
    return counts


def workload(*, agency: Agency, now: datetime | None = None) -> dict[str, Any]:
    """The figures of the workload page and endpoint (see the module docstring)."""
    now = now or timezone.now()
    open_tasks = Task.objects.filter(agency_id=agency.pk, state__in=OPEN_STATES)
    per_worker: dict[Any, dict[str, Any]] = {
        row["assignee_id"]: dict(row)
        for row in open_tasks.filter(assignee__isnull=False)
        .values("assignee_id")
        .annotate(overdue=Count("id", filter=Q(due_at__lt=now)), oldest=Min("created_at"))
        .order_by()
    }
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
                "oldest_open_age_seconds": int((now - oldest).total_seconds()) if oldest else None,
                "away": bool(away),
                "delegate": delegate,
            }
        )
    by_area = (
        open_tasks.values("service_area")
        .annotate(
            open=Count("id"),
            unassigned=Count("id", filter=Q(assignee__isnull=True)),
            overdue=Count("id", filter=Q(due_at__lt=now)),
        )
        .order_by("service_area")
    )
    return {
        "agency": agency.pk,
        "generated_at": now,
        "workers": workers,
        "unassigned": _buckets(open_tasks.filter(assignee__isnull=True), now),
        "service_areas": list(by_area),
    }
