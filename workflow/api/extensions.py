"""Hooks through which other apps extend the task representation without workflow importing them.

``sla`` registers, in its ``AppConfig.ready()``:
- a field: ``task_fields["sla"] = func(task) -> JSON-able``; prefetch via ``task_queryset_hooks``;
- a list filter: ``task_filters["sla_status"] = func(queryset, value) -> queryset``
  (raise ``workflow.errors.ValidationFailed`` for a bad value).

Any app may also append the event types it emits to ``event_types`` so ``/api/workflow/metadata`` lists them.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

task_fields: dict[str, Callable[[Any], Any]] = {}
task_filters: dict[str, Callable[[QuerySet, str], QuerySet]] = {}
task_queryset_hooks: list[Callable[[QuerySet], QuerySet]] = []
event_types: list[str] = []
