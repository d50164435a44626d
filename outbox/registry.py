"""The after-commit seam: apps register handlers for dispatched events in their ``AppConfig.ready()``.

A handler is called with the ``OutboxEvent`` inside a transaction that also writes the ledger row
``HandledEvent(handler=name, event=event)``; both commit together, and an event already in the
ledger for that handler is skipped, so redelivery never repeats an effect. A handler signals failure
by raising: its transaction rolls back and the event is retried with backoff.

A handler may also take a whole batch at once (``many``): a high-volume effect (a projection, an
export) then costs one statement per batch instead of one per event. ``many(events)`` must have exactly
the effect of ``func`` on each event in turn (events come in stream order). If it raises, the batch's
transaction rolls back and its events are redone one by one through ``func``, which isolates the event
that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

HandlerFunc = Callable[["OutboxEvent"], None]
BatchHandlerFunc = Callable[[list["OutboxEvent"]], None]


@dataclass(frozen=True)
class Handler:
    name: str
    func: HandlerFunc
    event_types: frozenset[str] | None = None  # None: every event type
    many: BatchHandlerFunc | None = None  # the batch form, if the handler has one

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


_handlers: dict[str, Handler] = {}


def register_handler(
    name: str,
    func: HandlerFunc,
    *,
    event_types: Iterable[str] | None = None,
    many: BatchHandlerFunc | None = None,
) -> Handler:
    """Register ``func`` under a stable ``name`` (the ledger key; renaming it re-handles history);
    ``many`` is its batch form (see the module docstring)."""
    if len(name) > 100:
        raise ValueError("Handler names are at most 100 characters.")
    existing = _handlers.get(name)
    if existing is not None and existing.func is not func:
        raise ValueError(f"A different handler is already registered as {name!r}.")
    handler = Handler(name, func, frozenset(event_types) if event_types is not None else None, many)
    _handlers[name] = handler
    return handler


def unregister_handler(name: str) -> None:
    _handlers.pop(name, None)


def handlers_for(event_type: str) -> list[Handler]:
    return [handler for handler in _handlers.values() if handler.wants(event_type)]


def registered_handlers() -> list[Handler]:
    return list(_handlers.values())
