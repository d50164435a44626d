"""The four trend reports, read from the rollups: SLA attainment, throughput, backlog aging, time in state.

Each sums hourly rollup rows into the window's local buckets (``reports.window``) in one statement (backlog
aging: two), so a report costs what its window and filters cover, not what the history holds. Scope follows
the stats API (``polaris.access.agency_scope``): admins every agency, agency staff their own (another
agency named in ``agency`` is 404), clients are refused.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection

from polaris.access import agency_scope
from polaris.accounts.models import User
from polaris.errors import NotFound
from polaris.sql.reports import report_sql, report_total_sql
from workflow.states import TaskState

from .fold import AGE_BAND_NAMES, DAY_MS, Metric
from .models import Rollup
from .window import Window

REPORTS = ("sla-attainment", "throughput", "backlog-aging", "time-in-state")
# States a task can leave (time in a final state is not measured).
MEASURED_STATES = (TaskState.NEW.value, TaskState.IN_PROGRESS.value, TaskState.BLOCKED.value)
BAND_FIELDS = {name: "age_" + name.replace("-", "_").replace("+", "_plus") for name in AGE_BAND_NAMES}


@dataclass(frozen=True)
class ReportFilters:
    agency_id: Any = None
    service_area: str | None = None
    task_type: str | None = None


def report_filters(*, user: User | None, agency: Any = None, **filters: Any) -> ReportFilters:
    """The caller's filters within the caller's scope (staff: their agency, whatever ``agency`` says)."""
    scope = agency_scope(user, "Reports are for administrators and agency staff.")
    if scope is not None and agency is not None and str(agency) != str(scope):
        raise NotFound("No such agency.")
    return ReportFilters(agency_id=scope if scope is not None else agency, **filters)


def _conditions(filters: ReportFilters) -> tuple[list[str], dict[str, Any]]:
    conditions, params = [], {}
    if filters.agency_id is not None:
        conditions.append("agency_id = %(agency)s::uuid")
        params["agency"] = str(filters.agency_id)
    if filters.service_area is not None:
        conditions.append("service_area = %(service_area)s")
        params["service_area"] = filters.service_area
    if filters.task_type is not None:
        conditions.append("task_type = %(task_type)s")
        params["task_type"] = filters.task_type
    return conditions, params


def _sums(
    window: Window, filters: ReportFilters, metrics: list[str], *, shift_hours: int = 0
) -> dict[tuple[date, str, str], int]:
    """{(local bucket date, metric, state): sum} over the window (``shift_hours`` moves rows earlier)."""
    conditions, params = _conditions(filters)
    shift = timedelta(hours=shift_hours)
    params.update(
        metrics=metrics,
        start=window.start + shift,
        end=window.end + shift,
        unit=window.unit,
        tz=window.tz_name,
    )
    with connection.cursor() as cursor:
        cursor.execute(report_sql(Rollup, conditions=conditions, shift_hours=shift_hours), params)
        rows = cursor.fetchall()
    return {(local.date(), metric, state): int(total) for local, metric, state, total in rows}


def _bucket_fields(window: Window, bucket: Any) -> dict[str, Any]:
    return {"bucket_start": bucket.local_start(window.zone), "bucket_end": bucket.local_end(window.zone)}


def report_throughput(*, window: Window, filters: ReportFilters) -> list[dict[str, Any]]:
    """Tasks created, completed and cancelled per bucket."""
    metrics = [Metric.CREATED, Metric.COMPLETED, Metric.CANCELLED]
    sums = _sums(window, filters, metrics)
    return [
        {**_bucket_fields(window, b), **{m: sums.get((b.day, m, ""), 0) for m in metrics}}
        for b in window.buckets
    ]


def report_sla_attainment(*, window: Window, filters: ReportFilters) -> list[dict[str, Any]]:
    """Tasks completed per bucket within their SLA (``met``) or after a breach, and the share met."""
    sums = _sums(window, filters, [Metric.SLA_MET, Metric.SLA_BREACHED])
    rows = []
    for bucket in window.buckets:
        met = sums.get((bucket.day, Metric.SLA_MET, ""), 0)
        breached = sums.get((bucket.day, Metric.SLA_BREACHED, ""), 0)
        attainment = round(met / (met + breached), 4) if met + breached else None
        rows.append(
            {**_bucket_fields(window, bucket), "met": met, "breached": breached, "attainment": attainment}
        )
    return rows


def report_time_in_state(*, window: Window, filters: ReportFilters) -> list[dict[str, Any]]:
    """Per bucket and state: how many times tasks left the state then, and the time they had spent in it."""
    sums = _sums(window, filters, [Metric.STATE_MS, Metric.STATE_EXITS])
    rows = []
    for bucket in window.buckets:
        for state in MEASURED_STATES:
            exits = sums.get((bucket.day, Metric.STATE_EXITS, state), 0)
            total = sums.get((bucket.day, Metric.STATE_MS, state), 0) / 1000
            rows.append(
                {
                    **_bucket_fields(window, bucket),
                    "state": state,
                    "exits": exits,
                    "total_seconds": round(total, 3),
                    "mean_seconds": round(total / exits, 3) if exits else None,
                }
            )
    return rows


def _backlog_before(window: Window, filters: ReportFilters) -> dict[str, int]:
    """Open tasks per band at the window's start: the running sum of every delta up to it (whole UTC days
    from the daily rows, the rest of the start's day from the hourly ones)."""
    conditions, params = _conditions(filters)
    until = window.start + timedelta(hours=1)  # deltas at hours <= start
    day_ms = int(until.timestamp() * 1000) // DAY_MS * DAY_MS
    params.update(
        day_metric=Metric.BACKLOG_DAY,
        hour_metric=Metric.BACKLOG,
        day=datetime.fromtimestamp(day_ms / 1000, tz=window.start.tzinfo),
        until=until,
    )
    with connection.cursor() as cursor:
        cursor.execute(report_total_sql(Rollup, conditions=conditions), params)
        return {state: int(total) for state, total in cursor.fetchall()}


def report_backlog_aging(*, window: Window, filters: ReportFilters) -> list[dict[str, Any]]:
    """Open tasks by age band at each bucket's end (just before it: open means created before and not yet
    closed; age counted from creation)."""
    running = defaultdict(int, _backlog_before(window, filters))
    # A delta at hour h counts from the snapshot at h on: bucket (start, end] holds h, i.e. h - 1 h in it.
    sums = _sums(window, filters, [Metric.BACKLOG], shift_hours=1)
    rows = []
    for bucket in window.buckets:
        for band in AGE_BAND_NAMES:
            running[band] += sums.get((bucket.day, Metric.BACKLOG, band), 0)
        bands = {BAND_FIELDS[band]: running[band] for band in AGE_BAND_NAMES}
        rows.append({**_bucket_fields(window, bucket), "open_total": sum(bands.values()), **bands})
    return rows


REPORT_FUNCTIONS = {
    "sla-attainment": report_sla_attainment,
    "throughput": report_throughput,
    "backlog-aging": report_backlog_aging,
    "time-in-state": report_time_in_state,
}
