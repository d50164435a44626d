"""Hooks through which other apps extend the task representation without workflow importing them.

``sla`` registers, in its ``AppConfig.ready()``:
- a field: ``task_fields["sla"] = func(task) -> JSON-able``; prefetch via ``task_queryset_hooks``;
- a list filter: ``task_filters["sla_status"] = func(queryset, value) -> queryset``
  (raise ``polaris.errors.ValidationFailed`` for a bad value).

Event types are registered with the outbox (``outbox.events.event_types_register``), not here.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

task_fields: dict[str, Callable[[Any], Any]] = {}
task_filters: dict[str, Callable[[QuerySet, str], QuerySet]] = {}
task_queryset_hooks: list[Callable[[QuerySet], QuerySet]] = []
