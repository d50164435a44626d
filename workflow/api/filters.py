"""The task list's filters, parsed once for every way they arrive: the query string of
``GET /api/workflow/tasks``, the ``filter`` object of a bulk request, and a saved view's ``filter``.

One parser means a saved view can hold exactly what the list accepts, and a view that validated when it
was saved runs the same way later. Every input is bounded: the search text and its terms, the comma lists
(at most one entry per known value), the dates (ISO 8601).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request

from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.api.strict import StrictFieldsMixin
from polaris.errors import ValidationFailed
from workflow import extensions
from workflow.models import Task, TaskPriority, TaskState
from workflow.search import (
    NARROW_MATCHES,
    SEARCH_MAX_LENGTH,
    SEARCH_MAX_TERMS,
    SEARCH_MIN_TERM,
    search_terms,
)

MAX_BIGINT = 2**63 - 1
ASSIGNEE_WORDS = ("none", "me")


class CommaChoicesField(serializers.CharField):
    """``new,in_progress``: one or more of ``choices``, comma-separated; an unknown value is named in the
    400. Repeats count once; the order is kept (it changes nothing)."""

    def __init__(self, *, choices: list[str], **kwargs: Any) -> None:
        self.choice_values = tuple(choices)
        kwargs.setdefault("help_text", f"One or more of {', '.join(choices)}, comma-separated (no spaces).")
        # Every value once, with its comma: anything longer repeats or is unknown.
        super().__init__(
            max_length=sum(len(choice) + 1 for choice in choices), trim_whitespace=False, **kwargs
        )

    def openapi_schema(self) -> dict[str, Any]:
        """What the server accepts, exactly (polaris.api.schema reads this)."""
        one = "(" + "|".join(self.choice_values) + ")"
        return {
            "type": "string",
            "pattern": f"^{one}(,{one})*$",
            "maxLength": self.max_length,
            "description": str(self.help_text),
        }

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        text = super().to_internal_value(data)
        if self.max_length is not None and len(text) > self.max_length:  # the raw text, not the parsed list
            self.fail("max_length", max_length=self.max_length)
        items = text.split(",")
        if any(not item for item in items):
            raise serializers.ValidationError("An empty value in the list: separate values with one comma.")
        unknown = [item for item in dict.fromkeys(items) if item not in self.choice_values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown value{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
                f"Choose from: {', '.join(self.choice_values)}."
            )
        return list(dict.fromkeys(items))


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT},
            {"type": "string", "enum": list(ASSIGNEE_WORDS)},
        ]
    }
)
class AssigneeFilterField(serializers.Field):
    """``assignee``: a user id, ``none`` (unassigned) or ``me`` (the caller: in a shared saved view, whoever
    opens it). Not a CharField nor an IntegerField: a bulk or saved-view filter may give the id as a JSON
    integer, and the query string gives it as text."""

    default_error_messages = {
        "invalid": 'A user id, "none" (unassigned) or "me".',
    }

    def to_internal_value(self, data: Any) -> str | int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str):
            if data in ASSIGNEE_WORDS:
                return data
            if not (data.isascii() and data.isdigit()):
                self.fail("invalid")
            data = int(data)
        if not isinstance(data, int) or not 0 < data <= MAX_BIGINT:
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.STR)
class SearchField(serializers.CharField):
    """``search``: words or the starts of words, each looked for in the title, the description and the
    client's first and last names (``workflow.search``); every term must match."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            f"Up to {SEARCH_MAX_TERMS} space-separated terms of {SEARCH_MIN_TERM}+ characters (at most "
            f"{SEARCH_MAX_LENGTH} in all); each matches the start of a word of the title, the description "
            "or the client's first or last name (case-insensitive), and all must match. Punctuation "
            "separates words; a term with no letter or digit narrows nothing. With a search, the list's "
            f"`count` is exact up to {NARROW_MATCHES:,} matches and PostgreSQL's estimate beyond.",
        )
        super().__init__(max_length=SEARCH_MAX_LENGTH, trim_whitespace=False, **kwargs)

    def openapi_schema(self) -> dict[str, Any]:
        r"""What the server accepts, exactly, in explicit character classes (a fuzzer's idea of ``\s`` or
        ``\w`` need not be Python's)."""
        term = f"[^ \\x00]{{{SEARCH_MIN_TERM},}}"
        return {
            "type": "string",
            "pattern": f"^ *{term}( +{term}){{0,{SEARCH_MAX_TERMS - 1}}} *$",
            "maxLength": SEARCH_MAX_LENGTH,
            "description": str(self.help_text),
        }

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if self.max_length is not None and len(text) > self.max_length:  # before any work on it
            self.fail("max_length", max_length=self.max_length)
        given = [term for term in text.split(" ") if term]
        if not given:
            raise serializers.ValidationError("Give at least one term.")
        if len(given) > SEARCH_MAX_TERMS:
            raise serializers.ValidationError(f"At most {SEARCH_MAX_TERMS} terms; {len(given)} given.")
        if short := [term for term in given if len(term) < SEARCH_MIN_TERM]:
            raise serializers.ValidationError(
                f"Each term needs {SEARCH_MIN_TERM} or more characters: not {', '.join(short)}."
            )
        return " ".join(search_terms(text))


class QueryBooleanField(serializers.BooleanField):
    """``true``/``false``; absent means absent (DRF's BooleanField reads a missing form key as false)."""

    default_empty_html = empty
    # Exactly what the schema's boolean says (in a query string: true or false), nothing DRF also takes.
    TRUE_VALUES = {"true", True}
    FALSE_VALUES = {"false", False}
    NULL_VALUES: set = set()


TASK_ORDERINGS = ("created_at", "updated_at", "due_at", "title", "state", "priority")


class TaskListQuerySerializer(PageQuerySerializer):
    state = CommaChoicesField(choices=list(TaskState.values), required=False)
    task_type = serializers.SlugField(max_length=64, required=False)
    service_area = serializers.SlugField(max_length=64, required=False)
    priority = CommaChoicesField(choices=list(TaskPriority.values), required=False)
    assignee = AssigneeFilterField(
        required=False, help_text='A user id, "none" (unassigned) or "me" (the caller).'
    )
    action_plan = serializers.UUIDField(required=False)
    client = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    search = SearchField(required=False)
    overdue = QueryBooleanField(
        required=False,
        help_text="true: open (new, in progress, blocked) and past its due time; false: everything else.",
    )
    due_after = serializers.DateTimeField(required=False, help_text="Due at or after (ISO 8601).")
    due_before = serializers.DateTimeField(required=False, help_text="Due strictly before (ISO 8601).")
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = serializers.DateTimeField(
        required=False, help_text="Created strictly before (ISO 8601)."
    )
    ordering = serializers.ChoiceField(
        choices=[*TASK_ORDERINGS, *(f"-{name}" for name in TASK_ORDERINGS)],
        required=False,
        help_text="Sort key; prefix with '-' for descending. Default -created_at; ties break on id.",
    )


class TaskFilterObjectSerializer(StrictFieldsMixin, serializers.Serializer):
    """The list's filters as a JSON object (a bulk request's or a saved view's ``filter``): the same
    fields, values of their JSON types, and the SLA app's ``sla_status`` declared statically like on the
    list (``workflow.api.tasks.SLA_STATUS_PARAMETER``). Subclasses name the query keys they leave out."""

    not_filters: tuple[str, ...] = ("page", "page_size")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {
            name: field
            for name, field in TaskListQuerySerializer().get_fields().items()
            if name not in self.not_filters
        }
        fields["sla_status"] = serializers.ChoiceField(
            choices=list(extensions.SLA_STATUS_VALUES),
            required=False,
            help_text="Provided by the SLA app.",
        )
        for name in extensions.task_filters:
            fields.setdefault(name, serializers.CharField(required=False))
        return fields


def task_list_params(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The list's query string: (validated filters, raw values of the filters other apps registered)."""
    return query_params_parse(
        request=request,
        serializer_class=TaskListQuerySerializer,
        extension_filters=extensions.task_filters,
    )


def task_filter_parse(
    filters: Any, *, shape: TaskFilterObjectSerializer
) -> tuple[dict[str, Any], dict[str, str]]:
    """A ``filter`` object (JSON) parsed exactly as the list parses its query string, after ``shape``
    checked its names and JSON types; errors come back under ``filter``."""
    if not isinstance(filters, Mapping):
        raise ValidationFailed(details={"filter": ["Must be an object."]})
    problems = shape.strict_errors(filters)
    assignee = filters.get("assignee")
    if isinstance(assignee, str) and assignee not in ASSIGNEE_WORDS:  # an id is a JSON integer here
        problems["assignee"] = ['A user id (an integer), "none" or "me".']
    if problems:
        raise ValidationFailed(details={"filter": problems})
    query = QueryDict(mutable=True)
    for name, value in filters.items():
        values = value if isinstance(value, list) else [value]
        query.setlist(name, ["" if item is None else _text(item) for item in values])
    try:
        known, extension_values = query_params_parse(
            request=cast(Request, SimpleNamespace(query_params=query)),
            serializer_class=TaskListQuerySerializer,
            extension_filters=extensions.task_filters,
        )
        for name, value in extension_values.items():
            # Other apps' filters check their value when applied: apply each to an empty queryset now,
            # so a saved view is refused when it is saved, not when it is opened.
            extensions.task_filters[name](Task.objects.none(), value)
    except ValidationFailed as exc:
        raise ValidationFailed(details={"filter": exc.details}) from None
    return known, extension_values


def _text(value: Any) -> str:
    # JSON true/false as the query string spells them (DRF's BooleanField reads both).
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
