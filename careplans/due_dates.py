"""A template task's due date: the moment it became ready plus its blueprint's business hours, counted on
the calendar of the SLA config that applies to the task (``sla.configs.sla_config_match``: the most
specific active config for its type and area; no config or no calendar on it: 24x7)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sla.calendar import Calendar, add_working_seconds
from sla.configs import sla_config_match, sla_configs_match
from sla.models import SLAConfig


class CalendarCache:
    """The SLA config and its calendar per (task type, service area), looked up once per instantiation or
    batch: ``preload`` reads those of many pairs in one query; a pair not preloaded is read when asked."""

    def __init__(self) -> None:
        self.configs: dict[tuple[str, str], SLAConfig | None] = {}
        self._calendars: dict[int, Calendar | None] = {}

    def preload(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.configs.update(sla_configs_match(set(pairs) - set(self.configs)))

    def config_for(self, *, task_type: str, service_area: str) -> SLAConfig | None:
        key = (task_type, service_area)
        if key not in self.configs:
            self.configs[key] = sla_config_match(task_type=task_type, service_area=service_area)
        return self.configs[key]

    def calendar_for(self, *, task_type: str, service_area: str) -> Calendar | None:
        config = self.config_for(task_type=task_type, service_area=service_area)
        if config is None or config.calendar is None:
            return None
        if config.pk not in self._calendars:
            self._calendars[config.pk] = Calendar.from_definition(config.calendar.definition())
        return self._calendars[config.pk]

    def due_at(
        self, *, ready_at: datetime, hours: float | None, task_type: str, service_area: str
    ) -> datetime | None:
        """``None`` when the blueprint names no due time."""
        if hours is None:
            return None
        calendar = self.calendar_for(task_type=task_type, service_area=service_area)
        return add_working_seconds(ready_at, hours * 3600, calendar)
