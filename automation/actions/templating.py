"""Action templates: ``$name`` placeholders filled from the event (``string.Template``, flat names only)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from outbox.models import OutboxEvent


def template_fields(*, event: OutboxEvent | Mapping[str, Any], names: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders a template may use: the payload's scalar fields, the predicate names, the event ids."""
    fields: dict[str, str] = {}
    payload = names.get("payload") or {}
    for source in (payload, names):
        for key, value in source.items():
            if isinstance(value, str | int | float) or value is None:
                fields[str(key)] = "" if value is None else str(value)
    if isinstance(event, OutboxEvent):
        fields["event_id"] = str(event.id)
        fields["correlation_id"] = event.correlation_id
    return fields


def template_render(
    template: str, *, event: OutboxEvent | Mapping[str, Any], names: Mapping[str, Any]
) -> str:
    """Fill ``$name`` placeholders. ``string.Template`` only substitutes flat names: it cannot reach
    attributes or indexes the way ``str.format`` can, and unknown placeholders are left as written."""
    return string.Template(template).safe_substitute(template_fields(event=event, names=names))
