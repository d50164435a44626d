"""The one family of domain errors, raised by every app and answered by the API in one place.

Each class carries the HTTP status the API answers it with (``status_code``), so the exception handler
maps by class and needs to know no app's codes: an app's error picks its status by the family it joins
(``class TaskClosed(Conflict)`` is a 409) or states its own ``status_code``.
"""

from typing import Any


class DomainError(Exception):
    """A request the domain cannot carry out. 400 unless a subclass says otherwise."""

    error_code = "DOMAIN_ERROR"
    status_code = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class InvalidTransition(DomainError):
    """The (source, target) pair is not an edge of the state machine."""

    error_code = "INVALID_TRANSITION"
    status_code = 400

    def __init__(self, *, source: str, target: str, entity: str = "task") -> None:
        super().__init__(
            f"Transition from {source} to {target} not allowed",
            details={"entity_type": entity, "from_state": source, "to_state": target},
        )


class GuardFailed(DomainError):
    """The edge exists but one or more guard conditions refused it."""

    error_code = "GUARD_FAILED"
    status_code = 400

    def __init__(self, *, guards: list[str], source: str, target: str) -> None:
        self.guards = guards
        super().__init__(
            f"Transition from {source} to {target} refused by guard(s): {', '.join(guards)}",
            details={"guards": guards, "from_state": source, "to_state": target},
        )


class ConcurrentModification(DomainError):
    error_code = "CONCURRENT_MODIFICATION"
    status_code = 409
    default_message = "The object was changed by someone else first; reload it and try again."


class NotFound(DomainError):
    error_code = "NOT_FOUND"
    status_code = 404
    default_message = "Not found."


class PermissionDenied(DomainError):
    error_code = "PERMISSION_DENIED"
    status_code = 403
    default_message = "You do not have permission to perform this action."


class ValidationFailed(DomainError):
    """Input that cannot be acted on; ``details`` maps field names to lists of messages."""

    error_code = "VALIDATION_ERROR"
    status_code = 400
    default_message = "The input is not valid."


class Conflict(DomainError):
    """The request conflicts with the current state.

    A closed object, a tie with another row: 409. Subclasses keep it and name the conflict with their own
    ``error_code``."""

    error_code = "CONFLICT"
    status_code = 409
    default_message = "The request conflicts with the current state."


class PreconditionFailed(DomainError):
    """``If-Match`` named a version that is no longer the object's current one.

    A precondition the client stated no longer holds: 412."""

    error_code = "PRECONDITION_FAILED"
    status_code = 412
    default_message = "The object has changed since the version the request named; reload it and retry."
