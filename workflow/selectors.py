"""Reads, scoped to what the caller may see: admins everything, agency agents their agency, clients their own.

An object outside the caller's scope is indistinguishable from an absent one (``NotFound``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.access import agency_scope, is_admin, is_agent, is_client, scope_filter
from polaris.accounts.models import Agency, ClientAgencyLink, User
from polaris.errors import NotFound
from polaris.sql.precompiled import row_get
from polaris.sql.querysets import rows_counted_note, statement_cached
from workflow import extensions

from . import search
from .machines import transitions_of
from .models import (
    ActionPlan,
    ActionPlanApproval,
    SavedView,
    Task,
    TaskChecklistItem,
    TaskPriority,
    TaskState,
)

M = TypeVar("M", Task, ActionPlan)


def _scoped(queryset: QuerySet, user: User | None) -> QuerySet:
    return queryset.filter(**scope_filter(user))


def task_queryset(*, user: User | None) -> QuerySet[Task]:
    return _scoped(Task.objects.all(), user)


def action_plan_queryset(*, user: User | None) -> QuerySet[ActionPlan]:
    return _scoped(ActionPlan.objects.all(), user)


def _get(model: type[M], user: User | None, object_id: Any, label: str) -> M:
    try:
        pk = uuid.UUID(str(object_id))
    except (ValueError, TypeError):
        raise NotFound(f"{label} not found.") from None
    # Precompiled: every transition starts here (polaris.sql.precompiled).
    instance = row_get(model, where={"id": pk, **scope_filter(user)})
    if instance is None:
        raise NotFound(f"{label} not found.")
    return instance


def task_get(*, user: User | None, task_id: Any) -> Task:
    return _get(Task, user, task_id, "Task")


def action_plan_get(*, user: User | None, action_plan_id: Any) -> ActionPlan:
    return _get(ActionPlan, user, action_plan_id, "Action plan")


def aggregate_events(*, aggregate_type: str, aggregate_id: Any) -> QuerySet[OutboxEvent]:
    """An aggregate's event history, in stream order."""
    return OutboxEvent.objects.filter(aggregate_type=aggregate_type, aggregate_id=aggregate_id).order_by(
        "sequence"
    )


def task_events(*, user: User | None, task_id: Any) -> QuerySet[OutboxEvent]:
    task = task_get(user=user, task_id=task_id)
    return aggregate_events(aggregate_type=Task.aggregate_type, aggregate_id=task.pk)


def available_targets(*, instance: Task | ActionPlan, user: User | None) -> list[str]:
    """Target states ``user`` may move ``instance`` to right now (edges, guards and permissions applied)."""
    targets = []
    state = instance.state  # read once: each read goes through django-fsm's descriptor
    for transition in transitions_of(type(instance)):
        if transition.source != state:
            continue
        if user is not None and not transition.has_perm(instance, user):
            continue
        if all(condition(instance) for condition in transition.conditions):
            targets.append(str(transition.target))
    return targets


_PRIORITY_RANK = Case(
    *(When(priority=value, then=Value(rank)) for rank, value in enumerate(TaskPriority.values)),
    default=Value(len(TaskPriority.values)),
    output_field=IntegerField(),
)


def _with_hooks(queryset: QuerySet[Task]) -> QuerySet[Task]:
    for hook in extensions.task_queryset_hooks:
        queryset = hook(queryset)
    # A task read and a list page compile their statement once per shape (polaris.sql.querysets).
    return statement_cached(queryset)


# The states in which a task is still work to do (an overdue task is one of these, past its due time).
OPEN_TASK_STATES = (TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED)
_RANGES = {
    "created_after": "created_at__gte",
    "created_before": "created_at__lt",
    "due_after": "due_at__gte",
    "due_before": "due_at__lt",
}


def overdue_q(*, now: datetime) -> Q:
    """Open and past its due time."""
    return Q(state__in=OPEN_TASK_STATES, due_at__lt=now)


def tasks_filter(tasks: QuerySet[Task], *, user: User, filters: Mapping[str, Any]) -> QuerySet[Task]:
    """``tasks`` narrowed by the list's validated filters (``workflow.api.filters``) but ``search``, which
    ``task_list`` applies last; ``assignee: "me"`` is ``user``."""
    for name in ("state", "priority"):  # comma lists
        if name in filters:
            tasks = tasks.filter(**{f"{name}__in": filters[name]})
    for name in ("task_type", "service_area", "action_plan"):
        if name in filters:
            tasks = tasks.filter(**{name: filters[name]})
    if "client" in filters:
        tasks = tasks.filter(client_id=filters["client"])
    if (assignee := filters.get("assignee")) is not None:
        if assignee == "none":
            tasks = tasks.filter(assignee__isnull=True)
        else:
            tasks = tasks.filter(assignee_id=user.pk if assignee == "me" else assignee)
    for name, lookup in _RANGES.items():
        if name in filters:
            tasks = tasks.filter(**{lookup: filters[name]})
    if "overdue" in filters:
        overdue = overdue_q(now=timezone.now())
        tasks = tasks.filter(overdue if filters["overdue"] else ~overdue)
    return tasks


def task_list(
    *, user: User, filters: Mapping[str, Any], extension_filters: Mapping[str, str] | None = None
) -> QuerySet[Task]:
    """The caller's tasks, filtered and in a stable order (the sort key, then ``id``)."""
    tasks = tasks_filter(task_queryset(user=user), user=user, filters=filters)
    for name, value in (extension_filters or {}).items():
        tasks = extensions.task_filters[name](tasks, value)

    # A search counts its matches first (up to NARROW_MATCHES + 1): the plan depends on it, and it is the
    # list's count (the paginator counts no further: exact up to NARROW_MATCHES, its estimate beyond).
    # Few matches come with their ids, and the page reads them by id: the search's index lookups (a
    # common word's is most of a search's cost) run once. The other filters stay in the page's query.
    matches: int | None = None
    if text := filters.get("search"):
        searched = search.tasks_search(tasks, text)
        matches, ids = search.search_matches(searched)
        if ids is not None:
            searched = tasks.filter(search.task_among(ids)) if ids else tasks.none()
        tasks = searched

    ordering = filters.get("ordering", "-created_at")
    descending, key = ordering.startswith("-"), ordering.lstrip("-")
    if key == "priority":
        tasks = tasks.annotate(priority_rank=_PRIORITY_RANK)
        key = "priority_rank"
    # NULLS LAST only where a NULL can be: on a NOT NULL column it would keep the (scope, created_at DESC,
    # id) indexes from serving the default order, and PostgreSQL would sort every row in scope for a page.
    nulls: dict[str, bool] = {}
    if key != "priority_rank" and Task._meta.get_field(key).null:
        nulls = {"nulls_last": True}
    elif matches is not None and matches <= search.NARROW_MATCHES:
        # Few matches: read them by id and sort them, rather than walk the order's index testing every
        # row. Naming the NULLs' place, meaningless on a NOT NULL column, is what keeps that index out.
        nulls = {"nulls_last": True} if descending else {"nulls_first": True}
    expression = F(key).desc(**nulls) if descending else F(key).asc(**nulls)
    listed = _with_hooks(tasks.order_by(expression, "id"))
    if matches is not None:
        rows_counted_note(listed, rows=matches, exact_up_to=search.NARROW_MATCHES)
    return listed


def task_detail(*, user: User, task_id: Any) -> Task:
    """One task in the caller's scope, with the extensions' prefetches; ``NotFound`` otherwise."""
    try:
        return _with_hooks(task_queryset(user=user)).get(pk=uuid.UUID(str(task_id)))
    except (ValueError, Task.DoesNotExist):
        raise NotFound("Task not found.") from None


def action_plan_list(*, user: User, filters: Mapping[str, Any]) -> QuerySet[ActionPlan]:
    """The caller's plans, filtered, newest first (ties break on ``id``)."""
    plans = action_plan_queryset(user=user)
    if "state" in filters:
        plans = plans.filter(state=filters["state"])
    if "client" in filters:
        plans = plans.filter(client_id=filters["client"])
    if "agency" in filters:
        plans = plans.filter(agency_id=filters["agency"])
    # The has_tasks and approved guards behind available_transitions read the prefetched rows.
    return plans.prefetch_related("tasks", "approvals").order_by("-created_at", "id")


def user_list(*, user: User, filters: Mapping[str, Any]) -> QuerySet[User]:
    """The people ``user`` may see (active accounts), filtered by ``role`` and ``search``.

    Admins: everyone. Agency staff: their agency's staff and the clients linked to their agency (an
    unlinked client, or one served only by other agencies, is not theirs to see). A client: itself and
    the agents assigned to its tasks. Each client's links come with it (the ``agencies`` field).
    """
    users = User.objects.filter(is_active=True)
    if is_agent(user) and user.agency_id is not None:
        agency_id = user.agency_id
        linked = ClientAgencyLink.objects.filter(agency_id=agency_id).values("client_id")
        users = users.filter(
            Q(role__in=User.STAFF_ROLES, agency_id=agency_id) | Q(role=User.Role.CLIENT, pk__in=linked)
        )
    elif not is_admin(user):
        assigned = Task.objects.filter(client_id=user.pk, assignee__isnull=False).values("assignee_id")
        users = users.filter(Q(pk=user.pk) | Q(pk__in=assigned))
    if "role" in filters:
        users = users.filter(role=filters["role"])
    if search := filters.get("search"):
        users = users.filter(
            Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
        )
    return users.prefetch_related("agency_links").order_by("username", "id")


def referable_users(*, user: Any) -> QuerySet[User]:
    """Users a caller may name in a body: admins anyone; agency staff their agency's staff and the clients
    linked to it; clients themselves and the staff of the agencies they are linked to."""
    users = User.objects.all()
    if is_admin(user):
        return users
    if is_agent(user):
        return users.filter(
            Q(agency_id=user.agency_id, role__in=User.STAFF_ROLES)
            | Q(role=User.Role.CLIENT, pk__in=linked_clients(agency_id=user.agency_id))
        )
    own_agents = Q(role__in=User.STAFF_ROLES, agency_id__in=linked_agencies(client_id=user.pk))
    return users.filter(Q(pk=user.pk) | own_agents)


def linked_clients(*, agency_id: Any) -> QuerySet:
    return ClientAgencyLink.objects.filter(agency_id=agency_id).values("client_id")


def linked_agencies(*, client_id: Any) -> QuerySet:
    return ClientAgencyLink.objects.filter(client_id=client_id).values("agency_id")


def referable_agencies(user: Any) -> QuerySet[Agency]:
    """Agencies a caller may name in a create body: admins and staff any (staff are refused another
    agency's work by the service, 403); a client only the agencies it is linked to."""
    if is_client(user):
        return Agency.objects.filter(pk__in=linked_agencies(client_id=user.pk))
    return Agency.objects.all()


def client_agencies_visible(*, viewer: User | None, client: User) -> list[str] | None:
    """The ids of the agencies serving ``client`` that ``viewer`` may know of: all for admins, their own
    (when linked) for agency staff; ``None`` (not shown) for clients and for users who are not clients.
    Reads the prefetched links when there are some."""
    if not is_client(client) or is_client(viewer):
        return None
    agency_ids = sorted(str(link.agency_id) for link in client.agency_links.all())
    if is_admin(viewer):
        return agency_ids
    assert viewer is not None
    return [agency_id for agency_id in agency_ids if agency_id == str(viewer.agency_id)]


def client_for_links_get(*, user: User | None, client_id: Any) -> User:
    """The client whose agency links ``user`` manages: admins any client; a supervisor a client linked
    to their agency or served by none yet (onboarding); anything else ``NotFound``. (Who may manage
    links at all is the service's check: ``polaris.access.manager_scope``.)"""
    try:
        pk = int(str(client_id))
    except ValueError:
        raise NotFound("Client not found.") from None
    if not 0 < pk < 2**63:
        raise NotFound("Client not found.")
    clients = User.objects.filter(role=User.Role.CLIENT, is_active=True)
    if not is_admin(user):
        assert user is not None
        assert user.agency_id is not None
        links = ClientAgencyLink.objects.filter(client_id=OuterRef("pk"))
        clients = clients.filter(Q(Exists(links.filter(agency_id=user.agency_id))) | ~Q(Exists(links)))
    client = clients.filter(pk=pk).first()
    if client is None:
        raise NotFound("Client not found.")
    return client


SAVED_VIEWS_MESSAGE = "Saved views are for administrators and agency staff."


def saved_view_queryset(*, user: User | None) -> QuerySet[SavedView]:
    """The views ``user`` may see: admins all; staff their own and their agency's shared ones; a client
    none (``PermissionDenied``: saved views are a staff tool)."""
    views = SavedView.objects.all()
    agency_id = agency_scope(user, SAVED_VIEWS_MESSAGE)
    if agency_id is None:
        return views
    assert user is not None
    return views.filter(Q(owner_id=user.pk) | Q(shared=True, agency_id=agency_id))


def saved_view_list(*, user: User) -> QuerySet[SavedView]:
    return saved_view_queryset(user=user).order_by("name", "id")


def saved_view_get(*, user: User | None, view_id: Any) -> SavedView:
    """A view in the caller's sight; ``NotFound`` otherwise (another person's private view included)."""
    try:
        pk = uuid.UUID(str(view_id))
    except (ValueError, TypeError):
        raise NotFound("Saved view not found.") from None
    view = saved_view_queryset(user=user).filter(pk=pk).first()
    if view is None:
        raise NotFound("Saved view not found.")
    return view


# --- Checklists and approvals (issue #24) ---------------------------------------------------------------

_CHECKLIST_CACHE = "_checklist_cache"


def checklist_items_of(task: Task) -> list[TaskChecklistItem]:
    """The task's checklist in order: no query for a task without items (its ``checklist_size``), none
    when ``checklists_prefetch`` loaded it, else one (kept on the instance)."""
    if not task.checklist_size:
        return []
    cached = task.__dict__.get(_CHECKLIST_CACHE)
    if cached is None:
        cached = list(TaskChecklistItem.objects.filter(task_id=task.pk).order_by("position"))
        task.__dict__[_CHECKLIST_CACHE] = cached
    return cached


def checklists_prefetch(tasks: list[Task]) -> None:
    """Load the checklists of a page of tasks in one query (none when no task has items)."""
    wanting = {
        task.pk: task for task in tasks if task.checklist_size and _CHECKLIST_CACHE not in task.__dict__
    }
    if not wanting:
        return
    for task in wanting.values():
        task.__dict__[_CHECKLIST_CACHE] = []
    for item in TaskChecklistItem.objects.filter(task_id__in=list(wanting)).order_by("task_id", "position"):
        wanting[item.task_id].__dict__[_CHECKLIST_CACHE].append(item)


def approval_status(plan: ActionPlan, *, staff: bool) -> dict[str, Any] | None:
    """What a plan's approval stands at (``None`` without a policy): the policy, the round, approvals so far
    and still needed, who of the listed approvers has not voted. For staff also the round's votes with their
    comments and the last rejection (the deliberation is not a client's to read). Reads the prefetched
    approvals when there are some."""
    policy = plan.approval_policy
    if not policy:
        return None
    votes = sorted(plan.approvals.all(), key=lambda vote: (vote.round, vote.created_at, str(vote.pk)))
    current = [vote for vote in votes if vote.round == plan.approval_round]
    approvals = sum(1 for vote in current if vote.decision == "approve")
    required = int(policy["count"])
    voted = {vote.approver_id for vote in current}
    status: dict[str, Any] = {
        "policy": policy,
        "round": plan.approval_round,
        "required": required,
        "approvals": approvals,
        "still_needed": max(0, required - approvals),
        "approved": approvals >= required,
        "pending_approvers": (
            [pk for pk in policy["approvers"] if pk not in voted and pk != plan.created_by_id]
            if "approvers" in policy
            else None
        ),
    }
    if staff:
        rejections = [vote for vote in votes if vote.decision == "reject"]
        status["votes"] = [_vote(vote) for vote in current]
        status["last_rejection"] = _vote(rejections[-1]) if rejections else None
    return status


def _vote(vote: ActionPlanApproval) -> dict[str, Any]:
    return {
        "id": str(vote.pk),
        "round": vote.round,
        "approver": vote.approver_id,
        "decision": vote.decision,
        "comment": vote.comment,
        "created_at": vote.created_at,
    }
