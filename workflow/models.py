"""Tasks and action plans: the state machines, defined with django-fsm.

The transition methods are the single source of truth for the graphs: services, the API's metadata
and the docs' diagrams all introspect them. A transition method takes ``context`` (an ``EventContext``);
the ``post_transition`` receiver in ``workflow.receivers`` turns it into an outbox row in the same
transaction.
"""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition

from outbox.models import OutboxEvent
from polaris.access import is_staff_for

from . import guards
from .policies import may_cancel_task
from .saved_views import SavedView  # noqa: F401  (a workflow model, kept in its own module)
from .states import ActionPlanState, TaskPriority, TaskState
from .validation import TITLE_MAX_LENGTH


class ActionPlan(FSMModelMixin, models.Model):
    """A client's plan: a set of tasks an agency works through. ``draft → active → archived``."""

    aggregate_type = "action_plan"
    # Columns a transition may change: the outbox service writes exactly these in its compare-and-swap
    # UPDATE, so a transition method that sets another field must list it here.
    transition_fields = ("state", "version", "updated_at")
    # The event the latest transition wrote (set by the post_transition receiver; not a column).
    recorded_event: "OutboxEvent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(blank=True)
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_plans"
    )
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="action_plans")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = FSMField(
        default=ActionPlanState.DRAFT, choices=ActionPlanState.choices, protected=True, db_index=True
    )
    # Position in this aggregate's event stream: the sequence of its latest event.
    version = models.PositiveIntegerField(default=1, editable=False)
    # Approvals (workflow.services.approvals): ``{"count": N, "approvers": [ids]}`` or ``{"count": N,
    # "role": "supervisor"}``; null: activation needs none. A rejection or a policy change starts a new
    # round: only the current round's approvals count.
    approval_policy = models.JSONField(null=True, blank=True, default=None)
    approval_round = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [models.Index(fields=["agency", "state"], name="plan_agency_state_idx")]

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state,
        source=ActionPlanState.DRAFT,
        target=ActionPlanState.ACTIVE,
        conditions=[guards.has_tasks, guards.approved],
        permission=is_staff_for,
    )
    def activate(self, *, context) -> None:
        """Put a drafted plan to work."""

    @transition(
        field=state,
        source=ActionPlanState.ACTIVE,
        target=ActionPlanState.ARCHIVED,
        conditions=[guards.all_tasks_closed],
        permission=is_staff_for,
    )
    def archive(self, *, context) -> None:
        """Close a plan whose tasks are all completed or cancelled."""

    @transition(
        field=state,
        source=ActionPlanState.DRAFT,
        target=ActionPlanState.ARCHIVED,
        permission=is_staff_for,
    )
    def archive_draft(self, *, context) -> None:
        """Shelve a plan that never went live."""


class Task(FSMModelMixin, models.Model):
    """A unit of work for a client. ``new → in_progress → completed``, with ``blocked`` and ``cancelled``."""

    aggregate_type = "task"
    transition_fields = ("state", "version", "blocked_reason", "blocked_reason_internal", "updated_at")
    recorded_event: "OutboxEvent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(blank=True)
    # Indexed below without the LIKE (varchar_pattern_ops) twin a SlugField adds: filters are equality.
    task_type = models.SlugField(max_length=64, db_index=False)
    service_area = models.SlugField(max_length=64, blank=True, db_index=False)
    priority = models.CharField(max_length=16, choices=TaskPriority.choices, default=TaskPriority.NORMAL)
    # No single-column index: (client, state) and (agency, state) below serve every lookup by either.
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks", db_index=False
    )
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, related_name="tasks", db_index=False
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    action_plan = models.ForeignKey(
        ActionPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    blocked_reason = models.TextField(blank=True)
    # The block's reason was marked internal (``"internal": true`` on the transition): clients never see it.
    # Database defaults too: set-based inserts that name only the older columns keep working.
    blocked_reason_internal = models.BooleanField(default=False, db_default=False)
    # Notes for the agency's staff and admins only: never in a client's view, never in an event's payload.
    staff_notes = models.TextField(blank=True, default="", db_default="")
    due_at = models.DateTimeField(null=True, blank=True)
    # The tasks this one still waits for (a plan made from a template: ``careplans``). Kept on the row so the
    # ``dependencies_met`` guard and the representation read no other table; emptied through dispatch as its
    # predecessors complete. The full graph is the ``careplans.TaskDependency`` table.
    waiting_on = ArrayField(models.UUIDField(), default=list, blank=True, db_default=[])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Counters of the task's checklist (workflow.services.checklists keeps them in the statement that
    # advances the task): the checklist_complete guard and a representation without items read no rows.
    checklist_size = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    checklist_open_required = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    state = FSMField(default=TaskState.NEW, choices=TaskState.choices, protected=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [
            models.Index(fields=["agency", "state"], name="task_agency_state_idx"),
            # The lists' default order within each scope (agency staff, a client, admins): a page is an
            # index range scan with a LIMIT, whatever the scope's size (workflow.selectors.task_list).
            models.Index(fields=["agency", "-created_at", "id"], name="task_agency_created_idx"),
            models.Index(fields=["client", "-created_at", "id"], name="task_client_created_idx"),
            models.Index(fields=["state"], name="task_state_idx"),
            models.Index(fields=["-created_at", "id"], name="task_created_idx"),
            models.Index(fields=["task_type"], name="task_type_idx"),
            models.Index(fields=["service_area"], name="task_service_area_idx"),
            # An agency's open tasks by assignee and service area, with what the workload counts of them
            # (routing.workload): its pass reads only the index when the table is vacuumed, and the
            # unassigned queue is a range of it (assignee IS NULL). Open tasks only: it stays small.
            models.Index(
                fields=["agency", "assignee", "service_area"],
                include=["id", "created_at", "due_at"],
                condition=models.Q(state__in=[TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED]),
                name="task_open_workload_idx",
            ),
            # ?search= reads the generated column search_vector through task_search_idx (GIN): both
            # are created by migration 0008 and not declared here, so no ORM read or write of a task
            # carries the vector (workflow.search says why).
        ]

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state,
        source=TaskState.NEW,
        target=TaskState.IN_PROGRESS,
        conditions=[guards.has_assignee, guards.dependencies_met],
        permission=is_staff_for,
    )
    def start(self, *, context) -> None:
        """Begin work; someone must be assigned."""

    @transition(
        field=state,
        source=[TaskState.NEW, TaskState.IN_PROGRESS],
        target=TaskState.BLOCKED,
        conditions=[guards.has_blocked_reason],
        permission=is_staff_for,
    )
    def block(self, *, context) -> None:
        """Park the task; ``blocked_reason`` says why."""

    @transition(
        field=state,
        source=TaskState.BLOCKED,
        target=TaskState.IN_PROGRESS,
        conditions=[guards.has_assignee, guards.dependencies_met],
        permission=is_staff_for,
    )
    def resume(self, *, context) -> None:
        self.blocked_reason = ""
        self.blocked_reason_internal = False

    @transition(
        field=state,
        source=TaskState.IN_PROGRESS,
        target=TaskState.COMPLETED,
        conditions=[guards.checklist_complete],
        permission=is_staff_for,
    )
    def complete(self, *, context) -> None:
        """Finish the work."""

    @transition(
        field=state,
        source=[TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED],
        target=TaskState.CANCELLED,
        permission=may_cancel_task,
    )
    def cancel(self, *, context) -> None:
        self.blocked_reason = ""
        self.blocked_reason_internal = False


# --- Checklists and approvals (issue #24: workflow.services.checklists, workflow.services.approvals) ---


class TaskChecklistItem(models.Model):
    """One step of a task's checklist, in ``position`` order. Ticked and unticked by the task's staff;
    a required item left open refuses the task's completion (guard ``checklist_complete``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="checklist_items")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=500)
    required = models.BooleanField(default=True)
    done = models.BooleanField(default=False)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("task", "position")
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="checklist_item_task_position_uniq")
        ]

    def __str__(self) -> str:
        return self.text


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class ActionPlanApproval(models.Model):
    """One approver's vote on a draft plan, in the plan's current ``approval_round`` (one per approver and
    round). Kept after a rejection starts a new round: the history of who decided what."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action_plan = models.ForeignKey(ActionPlan, on_delete=models.CASCADE, related_name="approvals")
    round = models.PositiveIntegerField()
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=ApprovalDecision.choices)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("action_plan", "round", "created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["action_plan", "round", "approver"], name="plan_approval_one_vote_per_round"
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver_id}"
