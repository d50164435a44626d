"""Documented placeholders for the fields other apps add to the task representation through
``workflow.extensions.task_fields`` (workflow does not import those apps): each declares, in the OpenAPI
document, the shape its app renders."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class ExtensionField(serializers.Field):
    """Placeholder for a documented extension field; the value comes from ``extensions.task_fields``
    (null when the app that registers it is not installed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance: Any) -> Any:
        return None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": True,
        "description": "The task's SLA (status, due_at, …) when the SLA app tracks it, else null.",
    }
)
class SLAExtensionField(ExtensionField):
    """``sla``, registered by the SLA app (``sla.apps``)."""


_NULLABLE_DATETIME = {"type": "string", "format": "date-time", "nullable": True}


@extend_schema_field(
    {
        "type": "array",
        "nullable": True,
        "description": "The timers of the timed triggers that matched this task, by due time (registered "
        "by the automation app; null without it). Admins and the task's agency staff only: a client gets "
        "an empty list (triggers are internal configuration).",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "trigger_id", "trigger", "state", "due_at", "fired_at", "cancelled_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "trigger_id": {"type": "integer"},
                "trigger": {"type": "string", "description": "The trigger's name."},
                "state": {"type": "string", "enum": ["pending", "fired", "cancelled"]},
                "due_at": {"type": "string", "format": "date-time"},
                "fired_at": _NULLABLE_DATETIME,
                "cancelled_at": _NULLABLE_DATETIME,
            },
        },
    }
)
class TimersExtensionField(ExtensionField):
    """``timers``, registered by the automation app (``automation.apps``)."""
