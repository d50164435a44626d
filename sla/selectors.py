"""SLA reads for the task API: the task representation's ``sla`` block, the ``?sla_status=`` filter and the
"at risk" rule (config reads live in ``sla.configs``)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import FilteredRelation, Q, QuerySet
from django.utils import timezone

from polaris.access import is_client, require_admin, require_staff
from polaris.api.datetimes import datetime_renderer
from polaris.errors import NotFound, ValidationFailed
from polaris.sql.precompiled import row_get
from workflow.extensions import SLA_STATUS_VALUES

from .clock import sla_record_remaining_seconds
from .models import SLAConfig, SLARecord, SLARecordStatus, SLARepair


def sla_block(task: Any, viewer: Any = None) -> dict[str, Any] | None:
    """The ``sla`` block of a task's representation (``None`` when no config applied). Staff (and the
    system, ``viewer=None``) see the whole clock; a client its due time and status only (the config's
    name, target and the clock's internals are the agency's)."""
    try:
        record = task.sla_record
    except SLARecord.DoesNotExist:
        return None
    status = sla_status_of(record, now=timezone.now())
    _iso = datetime_renderer()  # the API's datetime format, the current zone looked up once per block
    if is_client(viewer):
        return {"due_at": _iso(record.due_at), "status": status}
    return {
        "config_name": _config_name(record),
        "target_minutes": record.target_minutes,
        "started_at": _iso(record.started_at),
        "due_at": _iso(record.due_at),
        "status": status,
        "paused_seconds": record.paused_seconds,
        "breached_at": _iso(record.breached_at),
        "remaining_seconds": sla_record_remaining_seconds(record),
    }


# Config names by id, per process: the block after a transition would otherwise read the config (one round
# trip) for its name alone. A save in this process forgets them at once (``sla_config_names_forget``,
# connected in ``apps.py``); a rename made in another process shows here within the TTL.
CONFIG_NAME_CACHE_SECONDS = 30.0
_config_names: dict[int, tuple[float, str]] = {}


def _config_name(record: SLARecord) -> str:
    # A config fetched with the record (select_related) is used as it is; otherwise the per-process cache.
    if SLARecord.config.is_cached(record):
        return record.config.name
    now = time.monotonic()
    cached = _config_names.get(record.config_id)
    if cached is not None and now - cached[0] < CONFIG_NAME_CACHE_SECONDS:
        return cached[1]
    config = row_get(SLAConfig, where={"id": record.config_id})
    assert config is not None, "records protect their config"
    _config_names[record.config_id] = (now, config.name)
    return config.name


def sla_config_names_forget(**_: Any) -> None:
    """Forget the cached config names (an ``SLAConfig`` was saved; again when its transaction commits)."""
    _config_names.clear()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_config_names.clear)


def task_queryset_with_sla(queryset: QuerySet) -> QuerySet:
    """Fetch each task's record in the same query (no N+1 in lists). The config is not joined: the block
    needs only its name, which comes from the per-process cache (``_config_name``), as after a transition;
    a page then reads no config columns (JSON lists included) for each of its tasks."""
    return queryset.select_related("sla_record")


def sla_at_risk_q(*, now: datetime, prefix: str = "") -> Q:
    """The one "at risk" rule: a running clock that has passed a warning threshold, or its due time (a
    breach the next scan will record). ``prefix`` is the lookup path to the record from the queried model:
    ``""`` on ``SLARecord`` itself, ``"sla_record__"`` on ``Task``."""
    return Q(**{f"{prefix}status": SLARecordStatus.RUNNING}) & (
        ~Q(**{f"{prefix}warnings_sent": []})
        | Q(**{f"{prefix}next_warning_at__lte": now})
        | Q(**{f"{prefix}due_at__lte": now})
    )


def sla_at_risk_relation(now: datetime) -> FilteredRelation:
    """A task's SLA record while it is at risk at ``now`` (``sla_at_risk_q``), as a relation to annotate a
    task queryset with: a left join that keeps only the at-risk records, so ``Count`` of it is the number of
    at-risk tasks in the same pass as any other figure of the tasks (``workflow.extensions``)."""
    return FilteredRelation("sla_record", condition=sla_at_risk_q(now=now, prefix="sla_record__"))


def sla_record_at_risk(record: SLARecord, *, now: datetime) -> bool:
    """``sla_at_risk_q`` over a loaded record: the same three clauses, for the representation (the test
    ``tests/sla/test_at_risk_agreement.py`` holds the two to the same answer)."""
    return record.status == SLARecordStatus.RUNNING and (
        bool(record.warnings_sent)
        or (record.next_warning_at is not None and record.next_warning_at <= now)
        or record.due_at <= now
    )


def sla_status_of(record: SLARecord, *, now: datetime) -> str:
    """The status a task shows and ``?sla_status=`` filters by: the record's, except that a running clock
    that is at risk shows ``at_risk`` (so ``running`` means running and not at risk)."""
    return "at_risk" if sla_record_at_risk(record, now=now) else record.status


def task_filter_sla_status(queryset: QuerySet, value: str) -> QuerySet:
    """``?sla_status=``: running (and not at risk), paused, met, breached, or at_risk (running and past a
    warning threshold or its due time): the values the tasks' own ``sla.status`` shows (``sla_status_of``)."""
    if value not in SLA_STATUS_VALUES:
        raise ValidationFailed(details={"sla_status": [f"Choose one of: {', '.join(SLA_STATUS_VALUES)}."]})
    at_risk = sla_at_risk_q(now=timezone.now(), prefix="sla_record__")
    if value == "at_risk":
        return queryset.filter(at_risk)
    if value == SLARecordStatus.RUNNING:
        return queryset.filter(sla_record__status=value).exclude(at_risk)
    return queryset.filter(sla_record__status=value)


def sla_record_get(*, record_id: Any) -> SLARecord:
    try:
        return SLARecord.objects.select_related("config", "task").get(pk=uuid.UUID(str(record_id)))
    except (ValueError, TypeError, SLARecord.DoesNotExist):
        raise NotFound("SLA record not found.") from None


def sla_history(*, user: Any, task_id: Any) -> tuple[SLARecord, list[dict[str, Any]]]:
    """A task's SLA measurements, oldest first: those repairs replaced (``SLARecordVersion``), then the
    current one (the record's own columns). Staff only; a task out of scope (or without a record) is 404."""
    from workflow.selectors import task_get

    require_staff(user, "Only administrators and agency staff read SLA history.")
    task = task_get(user=user, task_id=task_id)
    record = SLARecord.objects.filter(task=task).first()
    if record is None:
        raise NotFound("This task has no SLA record.")
    versions = [
        {
            "number": version.number,
            "current": False,
            "repair": version.repair_id,
            "target_minutes": version.target_minutes,
            "calendar": version.calendar_snapshot,
            "due_at": version.due_at,
            "status": version.status,
            "breached_at": version.breached_at,
            "recorded_at": version.recorded_at,
        }
        for version in record.versions.filter(number__lt=record.measurement).order_by("number")
    ]
    latest = record.versions.filter(number=record.measurement).first()
    versions.append(
        {
            "number": record.measurement,
            "current": True,
            "repair": latest.repair_id if latest else None,
            "target_minutes": record.target_minutes,
            "calendar": record.calendar_snapshot,
            "due_at": record.due_at,
            "status": record.status,
            "breached_at": record.breached_at,
            "recorded_at": latest.recorded_at if latest else record.started_at,
        }
    )
    return record, versions


def sla_repair_list(*, user: Any) -> QuerySet[SLARepair]:
    """Every repair, newest first (admins only: SLA configs and calendars are global)."""
    require_admin(user, "Only admins repair SLA records.")
    return SLARepair.objects.order_by("-created_at", "id")


def sla_repair_get(*, user: Any, repair_id: Any) -> SLARepair:
    require_admin(user, "Only admins repair SLA records.")
    try:
        return SLARepair.objects.get(pk=uuid.UUID(str(repair_id)))
    except (ValueError, TypeError, SLARepair.DoesNotExist):
        raise NotFound("SLA repair not found.") from None
