"""Who may see and do what: the role and scope rules every app applies, written once.

``user=None`` is the system itself (automation, SLA scans, management commands): it sees and may do
everything. Admins see everything; agency staff (agents and supervisors) see their agency's objects; a
client its own. A supervisor also manages their agency's configuration (``manager_scope``,
``require_manager``); admins manage everything. Objects
outside a caller's scope are indistinguishable from absent ones, so selectors filter with
:func:`scope_filter` and raise ``NotFound``; role-gated operations raise ``PermissionDenied``.
"""

from __future__ import annotations

from typing import Any

from polaris.accounts.models import User
from polaris.errors import PermissionDenied


def is_admin(user: User | None) -> bool:
    """The system or an admin: everything is in scope."""
    return user is None or user.is_admin_role


def is_agent(user: User | None) -> bool:
    return user is not None and user.is_agency_role and user.agency_id is not None


def is_supervisor(user: User | None) -> bool:
    return user is not None and user.is_supervisor_role and user.agency_id is not None


def is_client(user: User | None) -> bool:
    return user is not None and user.is_client_role


def scope_filter(
    user: User | None, *, agency_field: str = "agency_id", client_field: str = "client_id"
) -> dict:
    """The lookup that keeps ``user`` within scope: admins nothing, agents their agency, clients their own."""
    if is_admin(user):
        return {}
    assert user is not None
    if user.is_agency_role:
        return {agency_field: user.agency_id}
    return {client_field: user.pk}


def agency_scope(user: User | None, message: str = "This is for administrators and agency staff.") -> Any:
    """The agency whose data a staff member sees (``None``: all of it); clients get ``PermissionDenied``."""
    if is_admin(user):
        return None
    if is_agent(user):
        assert user is not None
        return user.agency_id
    raise PermissionDenied(message)


def manager_scope(
    user: User | None, message: str = "This is for administrators and agency supervisors."
) -> Any:
    """The agency whose configuration ``user`` manages (``None``: every agency); anyone else is refused."""
    if is_admin(user):
        return None
    if is_supervisor(user):
        assert user is not None
        return user.agency_id
    raise PermissionDenied(message)


def require_manager(
    user: User | None,
    *,
    agency_id: Any,
    message: str = "Only administrators and this agency's supervisors may do this.",
) -> None:
    """Admins manage everything (``agency_id=None`` included: global objects); a supervisor their agency."""
    scope = manager_scope(user, message)
    if scope is not None and (agency_id is None or str(agency_id) != str(scope)):
        raise PermissionDenied(message)


def is_staff_for(obj: Any, user: Any) -> bool:
    """Admins (and the system) act on everything; agency agents on their own agency's objects.

    (``user`` is typed loosely: django-fsm calls it as a transition's ``permission``.)
    """
    if is_admin(user):
        return True
    return is_agent(user) and obj.agency_id == user.agency_id


def may_serve(user: User, *, agency_id: Any) -> bool:
    """May ``user`` be assigned work of ``agency_id``: an admin, or that agency's agents and supervisors."""
    return user.is_admin_role or (user.is_agency_role and user.agency_id == agency_id)


def require_admin(user: User | None, message: str = "Only administrators may do this.") -> None:
    if not is_admin(user):
        raise PermissionDenied(message)


def require_staff(
    user: User | None, message: str = "Only administrators and agency staff may do this."
) -> None:
    if user is not None and not (user.is_admin_role or user.is_agency_role):
        raise PermissionDenied(message)
