"""The correlation id of the work in hand: set per request by the middleware and per Celery task.

Services fall back to it when no correlation id is passed, so every event a request causes carries it.
"""

import re
import uuid
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Client-supplied ids are echoed in headers and logs: keep them short and plain.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def clean_correlation_id(value: str | None) -> str:
    """Return ``value`` when it is a safe id, else a fresh one."""
    if value and _VALID.match(value):
        return value
    return new_correlation_id()


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def set_correlation_id(value: str | None):
    return _correlation_id.set(value)


def reset_correlation_id(token) -> None:
    _correlation_id.reset(token)
