"""API representations: input serializers validate shape, output serializers render; no business logic.

References to users, agencies and plans in request bodies resolve only within what the caller may see,
so an out-of-scope id reads as "does not exist" (the same as an absent one).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from outbox.projection import event_project
from polaris.access import is_agent, is_client
from polaris.accounts.models import Agency, User
from polaris.api.datetimes import datetime_renderer
from polaris.api.query_params import PageQuerySerializer
from polaris.api.strict import StrictFieldsMixin
from workflow import extensions, selectors
from workflow.api.extension_fields import SLAExtensionField, TimersExtensionField
from workflow.models import ActionPlan, Task, TaskPriority, TaskState
from workflow.validation import SLUG, TITLE_MAX_LENGTH

MAX_BIGINT = 2**63 - 1


def _caller(serializer: Any) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


def default_agency(*, user: Any, client: User) -> Agency:
    """The agency a create body may omit: a staff member's own; otherwise the one agency the client is
    linked to. A client served by several agencies (or by none) needs the agency named."""
    if is_agent(user):
        return Agency.objects.get(pk=user.agency_id)
    linked = list(Agency.objects.filter(pk__in=selectors.linked_agencies(client_id=client.pk))[:2])
    if len(linked) == 1:
        return linked[0]
    raise serializers.ValidationError({"agency": ["This field is required."]})


@extend_schema_field(OpenApiTypes.INT)
class ScopedUserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet[User]:
        return selectors.referable_users(user=_caller(self.parent))

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # DRF reads "" as null for relational fields; an id is an integer or null, never a string.
        if data == "":
            self.fail("incorrect_type", data_type="str")
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> Any:
        # Ids are positive integers; bound them before they reach PostgreSQL's bigint.
        if isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < data <= MAX_BIGINT:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.UUID)
class ScopedActionPlanField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet[ActionPlan]:
        return selectors.action_plan_queryset(user=_caller(self.parent))

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(serializers.UUIDField().to_internal_value(data))


@extend_schema_field(OpenApiTypes.UUID)
class AgencyField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> QuerySet[Agency]:
        return selectors.referable_agencies(_caller(self.parent))

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(serializers.UUIDField().to_internal_value(data))


# --- Events ---------------------------------------------------------------------------------------


# The two representations on every transition's hot path are declared field by field: a ModelSerializer
# rebuilds its fields from the model's metadata for every instance, which costs a transition over HTTP
# about a millisecond of CPU. Their declared fields are the schema; rendering writes the dict directly
# (``to_representation``), because a Serializer deep-copies every declared field on its first use (another
# ~0.6 ms per response). tests/workflow/api/test_representation_parity.py pins the two to the same output.

_DATETIME = serializers.DateTimeField(read_only=True)  # ISO 8601 in the current zone, "Z" for UTC


def _uuid_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _datetime_or_none(value: Any) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class EventSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(read_only=True)
    sequence = serializers.IntegerField(read_only=True)
    occurred_at = serializers.DateTimeField(read_only=True)
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)
    correlation_id = serializers.CharField(read_only=True)
    causation_id = serializers.UUIDField(read_only=True, allow_null=True)
    payload = serializers.JSONField(read_only=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # What the caller may see of an event is decided in one place (outbox.projection).
        return event_project(
            {
                "id": str(instance.id),
                "event_type": str(instance.event_type),
                "sequence": int(instance.sequence),
                "occurred_at": _datetime_or_none(instance.occurred_at),
                "actor": _int_or_none(instance.actor_id),
                "correlation_id": None if instance.correlation_id is None else str(instance.correlation_id),
                "causation_id": _uuid_or_none(instance.causation_id),
                "payload": instance.payload,
            },
            viewer=_caller(self),
        )


def slug_field(*, example: str, allow_blank: bool = False, **kwargs: Any) -> serializers.RegexField:
    """A lowercase slug (``workflow.validation.SLUG``) as the services require it, declared as such."""
    pattern = SLUG.pattern
    if allow_blank:
        pattern = "^(?:" + pattern[1:-1] + ")?$"
    return serializers.RegexField(
        pattern,
        max_length=64,
        allow_blank=allow_blank,
        error_messages={"invalid": f"Use a lowercase slug such as {example!r}."},
        **kwargs,
    )


# --- Tasks ----------------------------------------------------------------------------------------


class ChecklistItemSerializer(serializers.Serializer):
    """One checklist item (``done_by`` is staff-only: absent for clients)."""

    id = serializers.UUIDField(read_only=True)
    text = serializers.CharField(read_only=True)
    required = serializers.BooleanField(read_only=True)  # type: ignore[assignment]  # named "required"
    done = serializers.BooleanField(read_only=True)
    done_by = serializers.IntegerField(read_only=True, allow_null=True, required=False)
    done_at = serializers.DateTimeField(read_only=True, allow_null=True)


def checklist_render(task: Task, viewer: Any) -> list[dict[str, Any]]:
    """The task's checklist in order, as ``viewer`` may see it (no query for a task without items)."""
    client = is_client(viewer)
    rendered = []
    for item in selectors.checklist_items_of(task):
        row: dict[str, Any] = {
            "id": str(item.pk),
            "text": str(item.text),
            "required": bool(item.required),
            "done": bool(item.done),
            "done_by": _int_or_none(item.done_by_id),
            "done_at": _datetime_or_none(item.done_at),
        }
        if client:
            del row["done_by"]
        rendered.append(row)
    return rendered


class TaskListSerializer(serializers.ListSerializer):
    """Many tasks: their checklists loaded in one query first (none when no task has items)."""

    def to_representation(self, data: Any) -> list[Any]:
        tasks = list(data.all() if hasattr(data, "all") else data)
        selectors.checklists_prefetch(tasks)
        return super().to_representation(tasks)


class TaskSerializer(serializers.Serializer):
    """A task as every endpoint returns it, including the fields other apps register."""

    class Meta:
        list_serializer_class = TaskListSerializer

    id = serializers.UUIDField(read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    task_type = serializers.SlugField(read_only=True)
    service_area = serializers.SlugField(read_only=True)
    priority = serializers.ChoiceField(choices=TaskPriority.choices, read_only=True)
    state = serializers.ChoiceField(choices=TaskState.choices, read_only=True)
    version = serializers.IntegerField(
        read_only=True,
        help_text="Position in the task's event stream; sent as the ETag, checked by If-Match.",
    )
    client = serializers.IntegerField(source="client_id", read_only=True)
    agency = serializers.UUIDField(source="agency_id", read_only=True)
    assignee = serializers.IntegerField(source="assignee_id", read_only=True, allow_null=True)
    action_plan = serializers.UUIDField(source="action_plan_id", read_only=True, allow_null=True)
    blocked_reason = serializers.CharField(
        read_only=True, help_text="Why the task is blocked; blank for a client when marked internal."
    )
    blocked_reason_internal = serializers.BooleanField(
        read_only=True, required=False, help_text="Staff only: the block's reason is internal."
    )
    staff_notes = serializers.CharField(
        read_only=True,
        required=False,
        help_text="Staff only (admins and the task's agency); absent for clients.",
    )
    due_at = serializers.DateTimeField(read_only=True, allow_null=True)
    waiting_on = serializers.ListField(
        child=serializers.UUIDField(),
        read_only=True,
        help_text="Ids of the tasks this one waits for (a plan made from a template); while not empty the "
        "task has no due date and its start is refused (guard dependencies_met).",
    )
    created_by = serializers.IntegerField(source="created_by_id", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    available_transitions = serializers.SerializerMethodField(
        help_text="Target states the caller may move this task to now (guards and permissions applied)."
    )
    checklist = serializers.SerializerMethodField(
        help_text="The task's checklist, in order; a required item open refuses completion."
    )
    sla = SLAExtensionField()
    timers = TimersExtensionField()

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(choices=TaskState.choices)))
    def get_available_transitions(self, task: Task) -> list[str]:
        return selectors.available_targets(instance=task, user=_caller(self))

    @extend_schema_field(ChecklistItemSerializer(many=True))
    def get_checklist(self, task: Task) -> list[dict[str, Any]]:
        return checklist_render(task, _caller(self))

    def to_representation(self, instance: Task) -> dict[str, Any]:
        viewer = _caller(self)
        datetime = datetime_renderer()
        data: dict[str, Any] = {
            "id": str(instance.id),
            "title": str(instance.title),
            "description": str(instance.description),
            "task_type": str(instance.task_type),
            "service_area": str(instance.service_area),
            "priority": str(instance.priority),
            "state": str(instance.state),
            "version": int(instance.version),
            "client": int(instance.client_id),
            "agency": str(instance.agency_id),
            "assignee": _int_or_none(instance.assignee_id),
            "action_plan": _uuid_or_none(instance.action_plan_id),
            "blocked_reason": str(instance.blocked_reason),
            "blocked_reason_internal": bool(instance.blocked_reason_internal),
            "staff_notes": str(instance.staff_notes),
            "due_at": datetime(instance.due_at),
            "waiting_on": [str(task_id) for task_id in instance.waiting_on],
            "created_by": _int_or_none(instance.created_by_id),
            "created_at": datetime(instance.created_at),
            "updated_at": datetime(instance.updated_at),
            "available_transitions": selectors.available_targets(instance=instance, user=viewer),
            "checklist": checklist_render(instance, viewer),
            "sla": None,
            "timers": None,
        }
        if is_client(viewer):
            # A client's view: no staff-only fields, no internal reason.
            del data["staff_notes"], data["blocked_reason_internal"]
            if instance.blocked_reason_internal:
                data["blocked_reason"] = ""
        for name, render in extensions.task_fields.items():
            data[name] = render(instance, viewer)
        return data


# Fields of the task representation no write body may set (strict bodies name them as read-only).
TASK_READ_ONLY_NAMES = (
    "id",
    "state",
    "version",
    "blocked_reason",
    "blocked_reason_internal",
    "created_by",
    "created_at",
    "updated_at",
    "available_transitions",
    "waiting_on",
    "checklist",
    "sla",
    "timers",
)


class TaskCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = TASK_READ_ONLY_NAMES

    title = serializers.CharField(max_length=TITLE_MAX_LENGTH)
    task_type = slug_field(example="home-visit")
    service_area = slug_field(example="housing", required=False, default="", allow_blank=True)
    priority = serializers.ChoiceField(
        choices=TaskPriority.choices, required=False, help_text="Default normal; not for clients (403)."
    )
    client = ScopedUserField(
        required=False, help_text="Client user id; required unless the caller is a client (then: itself)."
    )
    agency = AgencyField(
        queryset=Agency.objects.all(),
        required=False,
        help_text="Agency id; defaults to the caller's agency (or the client's); required for admins.",
    )
    assignee = ScopedUserField(required=False, allow_null=True, help_text="Not for clients (403).")
    action_plan = ScopedActionPlanField(required=False, allow_null=True, default=None)
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=10000)
    due_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = _caller(self)
        if "client" not in attrs:
            if is_client(user):
                attrs["client"] = user
            else:
                raise serializers.ValidationError({"client": ["This field is required."]})
        if "agency" not in attrs:
            attrs["agency"] = default_agency(user=user, client=attrs["client"])
        return attrs


class TaskTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    target_state = serializers.ChoiceField(choices=TaskState.choices)
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    internal = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The reason is for staff only: stored on the event, left out of a client's view.",
    )
    override_checklist = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "Complete although required checklist items are open: with target_state completed and a "
            "reason; supervisors of the task's agency and admins only (403 otherwise); recorded on the "
            "event as overridden_guards."
        ),
    )


class TaskTransitionResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    task = TaskSerializer()
    event = EventSerializer()


class _ListQuerySerializer(PageQuerySerializer):
    """``page`` and ``page_size``, as on every list (polaris.api.query_params)."""


class EventListQuerySerializer(_ListQuerySerializer):
    pass
