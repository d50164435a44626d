"""Datetimes as the API renders them (DRF's ``DateTimeField``: ISO 8601 in the current zone, ``Z`` for UTC),
for the hand-written representations of the hot paths.

DRF looks the current zone up for every value (through asgiref's context-local storage), which is most of
its per-value cost: a 20-task page renders about 140 datetimes. ``datetime_renderer()`` looks it up once
and returns a function that renders values the way the field does; anything off the common path (a naive
value, another output format, ``USE_TZ`` off) is rendered by the field itself, so the output is the same.
tests/workflow/api/test_representation_parity.py pins the task representation to DRF's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

DATETIME_FIELD = serializers.DateTimeField(read_only=True)


def datetime_or_none(value: datetime | None) -> str | None:
    """One value, by the field itself."""
    return None if value is None else DATETIME_FIELD.to_representation(value)


def datetime_renderer() -> Callable[[Any], str | None]:
    """A renderer for the values of one representation, with the current zone looked up once."""
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    output_format = getattr(DATETIME_FIELD, "format", api_settings.DATETIME_FORMAT)
    if zone is None or not isinstance(output_format, str) or output_format.lower() != ISO_8601:
        return datetime_or_none

    def render(value: Any) -> str | None:
        if value is None:
            return None
        if value.utcoffset() is None:  # naive: the field decides (make_aware, or its error)
            return DATETIME_FIELD.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return render
