"""SLA reads: config matching and listing, the task representation's ``sla`` block and filter, gauges."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import serializers

from polaris.accounts.models import User
from polaris.errors import NotFound, PermissionDenied, ValidationFailed
from polaris.precompiled import row_get

from .calendar import working_seconds_between
from .models import SLAConfig, SLARecord, SLARecordStatus

SLA_STATUS_FILTER_VALUES = ("running", "paused", "met", "breached", "at_risk")


def sla_config_match(*, task_type: str, service_area: str) -> SLAConfig | None:
    """The most specific active config for a task: area+type, then type, then area, then any."""
    candidates = SLAConfig.objects.select_related("calendar").filter(
        Q(task_type=task_type) | Q(task_type=""),
        Q(service_area=service_area) | Q(service_area=""),
        active=True,
    )
    return max(candidates, key=lambda config: config.specificity, default=None)


def _require_staff(user: User | None) -> None:
    if user is not None and user.role not in (User.Role.ADMIN, User.Role.AGENCY):
        raise PermissionDenied("Only admins and agency agents may read SLA configs.")


def sla_config_require_admin(user: User | None) -> None:
    """Only admins create or change SLA configs (``None``, the system, may too)."""
    if user is not None and user.role != User.Role.ADMIN:
        raise PermissionDenied("Only admins manage SLA configs.")


def sla_config_list(*, user: User | None) -> QuerySet[SLAConfig]:
    _require_staff(user)
    return SLAConfig.objects.select_related("calendar").order_by("name", "id")


def sla_config_get(*, user: User | None, config_id: Any, for_update: bool = False) -> SLAConfig:
    _require_staff(user)
    queryset = SLAConfig.objects.select_related("calendar")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    try:
        pk = int(str(config_id))
        if not 0 < pk < 2**63:  # beyond a bigint the database would refuse the query
            raise ValueError(pk)
        return queryset.get(pk=pk)
    except (ValueError, TypeError, SLAConfig.DoesNotExist):
        raise NotFound("SLA config not found.") from None


def sla_record_remaining_seconds(record: SLARecord, *, now: datetime | None = None) -> int | None:
    """Working seconds left on the clock (negative when overdue); ``None`` once the record is closed."""
    if record.status == SLARecordStatus.PAUSED and record.paused_at is not None:
        return round(working_seconds_between(record.paused_at, record.due_at, record.calendar))
    if record.status == SLARecordStatus.RUNNING:
        return round(working_seconds_between(now or timezone.now(), record.due_at, record.calendar))
    return None


def sla_block(task: Any) -> dict[str, Any] | None:
    """The ``sla`` block of a task's representation (``None`` when no config applied)."""
    try:
        record = task.sla_record
    except SLARecord.DoesNotExist:
        return None
    return {
        "config_name": _config_of(record).name,
        "target_minutes": record.target_minutes,
        "started_at": _iso(record.started_at),
        "due_at": _iso(record.due_at),
        "status": record.status,
        "paused_seconds": record.paused_seconds,
        "breached_at": _iso(record.breached_at),
        "remaining_seconds": sla_record_remaining_seconds(record),
    }


def _config_of(record: SLARecord) -> SLAConfig:
    # Lists fetch it with the record (select_related); after a transition only the record is at hand.
    if not SLARecord.config.is_cached(record):
        config = row_get(SLAConfig, where={"id": record.config_id})
        assert config is not None, "records protect their config"
        record.config = config
    return record.config


def _iso(value: datetime | None) -> str | None:
    # The same format as the task's own datetime fields (DRF's settings).
    return None if value is None else serializers.DateTimeField().to_representation(value)


def task_queryset_with_sla(queryset: QuerySet) -> QuerySet:
    """Fetch each task's record and config in the same query (no N+1 in lists)."""
    return queryset.select_related("sla_record__config")


def _at_risk(prefix: str, now: datetime) -> Q:
    return Q(**{f"{prefix}status": SLARecordStatus.RUNNING}) & (
        ~Q(**{f"{prefix}warnings_sent": []})
        | Q(**{f"{prefix}next_warning_at__lte": now})
        | Q(**{f"{prefix}due_at__lte": now})
    )


def task_filter_sla_status(queryset: QuerySet, value: str) -> QuerySet:
    """``?sla_status=``: running, paused, met, breached, or at_risk (running and past a warning threshold)."""
    if value not in SLA_STATUS_FILTER_VALUES:
        raise ValidationFailed(
            details={"sla_status": [f"Choose one of: {', '.join(SLA_STATUS_FILTER_VALUES)}."]}
        )
    if value == "at_risk":
        return queryset.filter(_at_risk("sla_record__", timezone.now()))
    return queryset.filter(sla_record__status=value)


def sla_record_get(*, record_id: Any) -> SLARecord:
    try:
        return SLARecord.objects.select_related("config", "task").get(pk=uuid.UUID(str(record_id)))
    except (ValueError, TypeError, SLARecord.DoesNotExist):
        raise NotFound("SLA record not found.") from None
