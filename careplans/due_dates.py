"""A template task's due date: the moment it became ready plus its blueprint's business hours, counted on
the calendar of the SLA config that applies to the task (``sla.configs.sla_config_match``: the most
specific active config for its type and area; no config or no calendar on it: 24x7)."""

from __future__ import annotations

from datetime import datetime

from sla.calendar import Calendar, add_working_seconds
from sla.configs import sla_config_match


class CalendarCache:
    """The calendar per (task type, service area), looked up once per instantiation or batch."""

    def __init__(self) -> None:
        self._calendars: dict[tuple[str, str], Calendar | None] = {}

    def calendar_for(self, *, task_type: str, service_area: str) -> Calendar | None:
        key = (task_type, service_area)
        if key not in self._calendars:
            config = sla_config_match(task_type=task_type, service_area=service_area)
            calendar = config.calendar if config is not None else None
            self._calendars[key] = Calendar.from_definition(calendar.definition()) if calendar else None
        return self._calendars[key]

    def due_at(
        self, *, ready_at: datetime, hours: float | None, task_type: str, service_area: str
    ) -> datetime | None:
        """``None`` when the blueprint names no due time."""
        if hours is None:
            return None
        calendar = self.calendar_for(task_type=task_type, service_area=service_area)
        return add_working_seconds(ready_at, hours * 3600, calendar)
