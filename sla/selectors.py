"""SLA reads for the task API: the task representation's ``sla`` block, the ``?sla_status=`` filter and the
"at risk" rule (config reads live in ``sla.configs``)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from polaris.access import is_client
from polaris.api.datetimes import datetime_renderer
from polaris.errors import NotFound, ValidationFailed
from polaris.sql.precompiled import row_get
from workflow.extensions import SLA_STATUS_VALUES

from .clock import sla_record_remaining_seconds
from .models import SLAConfig, SLARecord, SLARecordStatus


def sla_block(task: Any, viewer: Any = None) -> dict[str, Any] | None:
    """The ``sla`` block of a task's representation (``None`` when no config applied). Staff (and the
    system, ``viewer=None``) see the whole clock; a client its due time and status only (the config's
    name, target and the clock's internals are the agency's)."""
    try:
        record = task.sla_record
    except SLARecord.DoesNotExist:
        return None
    _iso = datetime_renderer()  # the API's datetime format, the current zone looked up once per block
    if is_client(viewer):
        return {"due_at": _iso(record.due_at), "status": record.status}
    return {
        "config_name": _config_name(record),
        "target_minutes": record.target_minutes,
        "started_at": _iso(record.started_at),
        "due_at": _iso(record.due_at),
        "status": record.status,
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


def task_filter_sla_status(queryset: QuerySet, value: str) -> QuerySet:
    """``?sla_status=``: running, paused, met, breached, or at_risk (running and past a warning threshold)."""
    if value not in SLA_STATUS_VALUES:
        raise ValidationFailed(details={"sla_status": [f"Choose one of: {', '.join(SLA_STATUS_VALUES)}."]})
    if value == "at_risk":
        return queryset.filter(sla_at_risk_q(now=timezone.now(), prefix="sla_record__"))
    return queryset.filter(sla_record__status=value)


def sla_record_get(*, record_id: Any) -> SLARecord:
    try:
        return SLARecord.objects.select_related("config", "task").get(pk=uuid.UUID(str(record_id)))
    except (ValueError, TypeError, SLARecord.DoesNotExist):
        raise NotFound("SLA record not found.") from None
