"""Routing rule endpoints (admins any agency's; a supervisor their agency's; others 403; out of scope 404):
list/create, detail/change/delete. Every change is audited by the service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.access import manager_scope
from polaris.api.query_params import query_params_parse
from polaris.errors import ValidationFailed
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response
from workflow.api.common import caller, serializer_context

from ..selectors import rule_get, rule_list
from ..services.rules import rule_create, rule_delete, rule_update
from .common import FORBIDDEN, NOT_FOUND, VALIDATION, IsManager
from .serializers import RuleInputSerializer, RuleListQuerySerializer, RuleOutputSerializer

RULE_ID = OpenApiParameter("rule_id", str, OpenApiParameter.PATH, description="The rule's id (UUID).")


def _values(request: Request, *, partial: bool) -> dict[str, Any]:
    serializer = RuleInputSerializer(data=request.data, partial=partial, context=serializer_context(request))
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
    if "candidates" in values:
        values["candidates"] = sorted({user.pk for user in values["candidates"]})
    return values


class RuleListView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = RuleOutputSerializer

    @extend_schema(
        operation_id="routing_rules_list",
        tags=["routing"],
        summary="Routing rules in evaluation order (admins; supervisors: their agency's)",
        parameters=[RuleListQuerySerializer],
        responses={200: RuleOutputSerializer(many=True), 400: VALIDATION, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=RuleListQuerySerializer)
        rules = rule_list(user=caller(request), agency_id=filters.get("agency"))
        page = self.paginate_queryset(rules)
        return self.get_paginated_response(RuleOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="routing_rules_create",
        tags=["routing"],
        summary="Create a routing rule (admins; supervisors for their agency; audited; Idempotency-Key)",
        request=RuleInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: RuleOutputSerializer, 400: VALIDATION, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            manager_scope(caller(request))  # agents and clients: 403 before the body is read
            values = _values(request, partial=False)
            agency = values.pop("agency", None)
            agency_id = agency.pk if agency is not None else manager_scope(caller(request))
            rule = rule_create(actor=caller(request), agency_id=agency_id, **values)
            return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/routing-rules", perform=perform)


class RuleDetailView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = RuleOutputSerializer

    @extend_schema(
        operation_id="routing_rules_retrieve",
        tags=["routing"],
        summary="One routing rule",
        parameters=[RULE_ID],
        responses={200: RuleOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, rule_id: str) -> Response:
        return Response(RuleOutputSerializer(rule_get(user=caller(request), rule_id=rule_id)).data)

    @extend_schema(
        operation_id="routing_rules_partial_update",
        tags=["routing"],
        summary="Change a routing rule (audited; Idempotency-Key honoured)",
        request=RuleInputSerializer,
        parameters=[RULE_ID, IDEMPOTENCY_PARAMETER],
        responses={200: RuleOutputSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def patch(self, request: Request, rule_id: str) -> Response:
        def perform() -> Response:
            rule_get(user=caller(request), rule_id=rule_id)  # out of scope: 404 before the body
            values = _values(request, partial=True)
            if "agency" in values:
                raise ValidationFailed(
                    details={"agency": ["A rule stays with its agency: create a new one."]}
                )
            rule = rule_update(actor=caller(request), rule_id=rule_id, **values)
            return Response(RuleOutputSerializer(rule).data)

        return idempotent_response(
            request=request, scope=f"PATCH workflow/routing-rules/{rule_id}", perform=perform
        )

    @extend_schema(
        operation_id="routing_rules_destroy",
        tags=["routing"],
        summary="Delete a routing rule (audited); routed tasks keep their events",
        parameters=[RULE_ID],
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def delete(self, request: Request, rule_id: str) -> Response:
        rule_delete(actor=caller(request), rule_id=rule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
