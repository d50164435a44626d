"""``emit_alert``: an ``Alert`` for the event's agency (one row: no savepoint needed)."""

from __future__ import annotations

from typing import Any

from ..alerts import alert_raise
from ..models import Alert
from .registry import ActionContext, Param, action_type


@action_type(
    "emit_alert",
    Param("severity", choices=tuple(Alert.Severity.values)),
    Param("message", required=True, max_length=500, template=True),
    single_write=True,
)
def emit_alert(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """An ``Alert`` for the event's agency (admins see all) and a structured log line."""
    alert = alert_raise(
        severity=params.get("severity") or Alert.Severity.WARNING,
        message=context.render(params["message"])[:500],
        event=context.event,
        trigger=context.trigger,
    )
    return {"alert_id": alert.pk}
