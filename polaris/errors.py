"""The one family of domain errors. The API maps ``error_code`` to an HTTP status in one place."""

from typing import Any


class DomainError(Exception):
    error_code = "DOMAIN_ERROR"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class InvalidTransition(DomainError):
    """The (source, target) pair is not an edge of the state machine."""

    error_code = "INVALID_TRANSITION"

    def __init__(self, *, source: str, target: str, entity: str = "task") -> None:
        super().__init__(
            f"Transition from {source} to {target} not allowed",
            details={"entity_type": entity, "from_state": source, "to_state": target},
        )


class GuardFailed(DomainError):
    """The edge exists but one or more guard conditions refused it."""

    error_code = "GUARD_FAILED"

    def __init__(self, *, guards: list[str], source: str, target: str) -> None:
        self.guards = guards
        super().__init__(
            f"Transition from {source} to {target} refused by guard(s): {', '.join(guards)}",
            details={"guards": guards, "from_state": source, "to_state": target},
        )


class ConcurrentModification(DomainError):
    error_code = "CONCURRENT_MODIFICATION"
    default_message = "The object was changed by someone else first; reload it and try again."


class NotFound(DomainError):
    error_code = "NOT_FOUND"
    default_message = "Not found."


class PermissionDenied(DomainError):
    error_code = "PERMISSION_DENIED"
    default_message = "You do not have permission to perform this action."


class ValidationFailed(DomainError):
    """Input that cannot be acted on; ``details`` maps field names to lists of messages."""

    error_code = "VALIDATION_ERROR"
    default_message = "The input is not valid."


class Conflict(DomainError):
    error_code = "CONFLICT"
    default_message = "The request conflicts with the current state."
