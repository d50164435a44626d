"""``POST /api/workflow/tasks/bulk``: one action on up to 500 tasks, named by ids or by the list filters."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.errors import ValidationFailed
from polaris.idempotency.services import idempotent_response
from workflow.api.common import IDEMPOTENCY_PARAMETER, caller, correlation_id_of, serializer_context
from workflow.api.edit_serializers import (
    BULK_MAX_ITEMS,
    TASK_BULK_REQUEST,
    BulkTransitionParamsSerializer,
    TaskAssignSerializer,
    TaskBulkFilterSerializer,
    TaskBulkResultSerializer,
    TaskBulkSerializer,
    TaskUpdateSerializer,
)
from workflow.api.filters import task_filter_parse
from workflow.selectors import task_list
from workflow.services.bulk import task_bulk_apply

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # polaris.idempotency's rule (its schema's pattern)


def _too_many(count: int, field: str) -> ValidationFailed:
    return ValidationFailed(
        f"{count} tasks named; a bulk request takes at most {BULK_MAX_ITEMS}.",
        details={field: [f"{count} tasks; at most {BULK_MAX_ITEMS} per request."], "count": count},
    )


def _filtered_ids(request: Request, filters: dict[str, Any]) -> list[Any]:
    """The ids the list endpoint would return for ``filters`` (its own parser and selector)."""
    known, extension_values = task_filter_parse(filters, shape=TaskBulkFilterSerializer())
    tasks = task_list(user=caller(request), filters=known, extension_filters=extension_values)
    ids = list(tasks.values_list("id", flat=True)[: BULK_MAX_ITEMS + 1])
    if len(ids) > BULK_MAX_ITEMS:
        raise _too_many(tasks.count(), "filter")
    return ids


def _params(request: Request, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The action's keyword arguments, validated once for every item."""
    shapes: dict[str, type[serializers.Serializer]] = {
        "transition": BulkTransitionParamsSerializer,
        "assign": TaskAssignSerializer,
        "update": TaskUpdateSerializer,
    }
    serializer = shapes[action](data=params, context=serializer_context(request))
    if not serializer.is_valid():
        raise ValidationFailed(details={"params": serializer.errors})
    data = dict(serializer.validated_data)
    return {"changes": data} if action == "update" else data


def _body(request: Request) -> dict[str, Any]:
    """The validated request body (the 500 limit first, so its 400 names the count)."""
    named = request.data.get("ids") if isinstance(request.data, dict) else None
    if isinstance(named, list) and len(named) > BULK_MAX_ITEMS:
        raise _too_many(len(named), "ids")
    serializer = TaskBulkSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TaskBulkView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Transition, assign or update up to 500 tasks; each item its own transaction",
        request=TASK_BULK_REQUEST,
        responses={200: TaskBulkResultSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request) -> Response:
        body = _body(request)

        def perform() -> Response:
            action = body["action"]
            params = _params(request, action, body["params"])
            if "ids" in body:
                ids = list(dict.fromkeys(body["ids"]))  # each task once, in the order given
            else:
                ids = _filtered_ids(request, body["filter"])
            # The response is built from the items' results in memory: without a key each item has
            # committed by now, and nothing read after those commits could fail the request.
            results = task_bulk_apply(
                actor=caller(request),
                action=action,
                task_ids=ids,
                params=params,
                dry_run=body["dry_run"],
                correlation_id=correlation_id_of(request),
                selection=body.get("filter"),
            )
            succeeded = sum(result["status"] == "succeeded" for result in results)
            return Response(
                {
                    "success": True,
                    "action": action,
                    "dry_run": body["dry_run"],
                    "counts": {
                        "total": len(results),
                        "succeeded": succeeded,
                        "failed": len(results) - succeeded,
                    },
                    "results": results,
                }
            )

        if body["dry_run"]:
            key = request.headers.get("Idempotency-Key")
            if key is not None and not IDEMPOTENCY_KEY.match(key):  # not recorded, yet refused as elsewhere
                raise ValidationFailed(
                    details={"Idempotency-Key": ["Use 1 to 255 visible ASCII characters."]}
                )
            # Writes nothing, so there is nothing to make safe to retry: an Idempotency-Key is not
            # recorded, and a real run sent later with the same key runs.
            return perform()
        # Without a key each item commits on its own; with one, all items and the key's record commit
        # together (savepoints in one transaction), so a retry replays instead of repeating.
        return idempotent_response(
            request=request, scope="POST workflow/tasks/bulk", perform=perform, atomic_without_key=False
        )
