"""Plan template endpoints: list/create, detail/change, the next version, and migrating plans between
versions. Admins any agency's; a supervisor their own agency's (agents may read them to make plans;
clients 403; another agency's templates are 404). Writes honour ``Idempotency-Key``."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.access import manager_scope
from polaris.accounts.models import Agency, User
from polaris.api.pagination import StandardPagination
from polaris.api.query_params import query_params_parse
from polaris.errors import ValidationFailed
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response

from ..models import PlanTemplate, PlanTemplateVersion
from ..selectors import plan_template_get, plan_template_list, plan_template_versions_in_use
from ..services.plan_migrations import migration_apply, migration_preview
from ..services.templates import plan_template_create, plan_template_update, plan_template_version_create
from .serializers import (
    PlanMigrationInputSerializer,
    PlanMigrationResultSerializer,
    PlanTemplateCreateSerializer,
    PlanTemplateListQuerySerializer,
    PlanTemplateSerializer,
    PlanTemplateUpdateSerializer,
    PlanTemplateVersionCreateSerializer,
)

TEMPLATE_ID = OpenApiParameter("template_id", int, OpenApiParameter.PATH, description="The template's id.")
ERRORS = {
    400: OpenApiResponse(description="VALIDATION_ERROR, DEPENDENCY_CYCLE"),
    403: OpenApiResponse(description="PERMISSION_DENIED"),
    404: OpenApiResponse(description="NOT_FOUND"),
}


def _user(request: Request) -> User:
    return cast(User, request.user)


def _rendered(templates: list[PlanTemplate]) -> list[dict[str, Any]]:
    """Templates with their latest versions (one query) and which versions are in use (one query)."""
    by_id = {template.pk: template for template in templates}
    for version in PlanTemplateVersion.objects.filter(template_id__in=list(by_id)):
        owner = by_id[version.template_id]
        if version.number == owner.latest_version:
            owner.latest = version  # type: ignore[attr-defined]
    context = {"in_use": plan_template_versions_in_use(list(by_id))}
    return cast(list[dict[str, Any]], PlanTemplateSerializer(templates, many=True, context=context).data)


def _one(template: PlanTemplate) -> dict[str, Any]:
    return _rendered([template])[0]


def _input(serializer_class: type, request: Request, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PlanTemplateListView(APIView):
    permission_classes = [IsAuthenticated]
    pagination_class = StandardPagination  # read by the schema generator

    @extend_schema(
        operation_id="plan_templates_list",
        tags=["plan templates"],
        summary="List plan templates (admins all; agency staff their agency's)",
        parameters=[PlanTemplateListQuerySerializer],
        responses={200: PlanTemplateSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=PlanTemplateListQuerySerializer)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            plan_template_list(user=_user(request), filters=filters), request, view=self
        )
        return paginator.get_paginated_response(_rendered(list(page or [])))

    @extend_schema(
        operation_id="plan_templates_create",
        tags=["plan templates"],
        summary="Create a plan template with its version 1 (admins; supervisors for their agency)",
        request=PlanTemplateCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: PlanTemplateSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            values = _input(PlanTemplateCreateSerializer, request)
            agency_id = values.pop("agency", None) or manager_scope(_user(request))
            if agency_id is None:
                raise ValidationFailed(details={"agency": ["This field is required."]})
            agency = Agency.objects.filter(pk=agency_id).first()
            if agency is None:
                raise ValidationFailed(details={"agency": [f"Agency {agency_id} does not exist."]})
            template = plan_template_create(actor=_user(request), agency=agency, **values)
            return Response(_one(template), status=status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/plan-templates", perform=perform)


class PlanTemplateDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="plan_templates_retrieve",
        tags=["plan templates"],
        summary="One plan template with its latest version",
        parameters=[TEMPLATE_ID],
        responses={200: PlanTemplateSerializer, **ERRORS},
    )
    def get(self, request: Request, template_id: str) -> Response:
        return Response(_one(plan_template_get(user=_user(request), template_id=template_id)))

    @extend_schema(
        operation_id="plan_templates_partial_update",
        tags=["plan templates"],
        summary="Change a template's name/description, or its latest version while no plan uses it "
        "(409 TEMPLATE_VERSION_IN_USE)",
        request=PlanTemplateUpdateSerializer,
        parameters=[TEMPLATE_ID, IDEMPOTENCY_PARAMETER],
        responses={
            200: PlanTemplateSerializer,
            409: OpenApiResponse(description="TEMPLATE_VERSION_IN_USE"),
            **ERRORS,
        },
    )
    def patch(self, request: Request, template_id: str) -> Response:
        def perform() -> Response:
            changes = _input(PlanTemplateUpdateSerializer, request)
            template = plan_template_update(actor=_user(request), template_id=template_id, changes=changes)
            return Response(_one(template))

        scope = f"PATCH workflow/plan-templates/{template_id}"
        return idempotent_response(request=request, scope=scope, perform=perform)


class PlanTemplateVersionCreateView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="plan_templates_versions_create",
        tags=["plan templates"],
        summary="Make the template's next version (new plans are made from it)",
        request=PlanTemplateVersionCreateSerializer,
        parameters=[TEMPLATE_ID, IDEMPOTENCY_PARAMETER],
        responses={201: PlanTemplateSerializer, **ERRORS},
    )
    def post(self, request: Request, template_id: str) -> Response:
        def perform() -> Response:
            values = _input(PlanTemplateVersionCreateSerializer, request)
            plan_template_version_create(actor=_user(request), template_id=template_id, **values)
            template = plan_template_get(user=_user(request), template_id=template_id)
            return Response(_one(template), status=status.HTTP_201_CREATED)

        scope = f"POST workflow/plan-templates/{template_id}/versions"
        return idempotent_response(request=request, scope=scope, perform=perform)


class PlanTemplateMigrationView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="plan_templates_migrations_create",
        tags=["plan templates"],
        summary="Preview (dry_run, the default) or apply moving plans from one template version to another "
        "(an application posted again moves only the plans still on from_version)",
        request=PlanMigrationInputSerializer,
        parameters=[TEMPLATE_ID, IDEMPOTENCY_PARAMETER],
        responses={200: PlanMigrationResultSerializer, **ERRORS},
    )
    def post(self, request: Request, template_id: str) -> Response:
        # Like bulk: without an Idempotency-Key, applying commits batch by batch (each plan once: a plan
        # already moved is no longer on from_version); with one, the whole answer is one transaction.
        def perform() -> Response:
            return Response(PlanMigrationResultSerializer(self._result(request, template_id)).data)

        scope = f"POST workflow/plan-templates/{template_id}/migrations"
        return idempotent_response(request=request, scope=scope, perform=perform, atomic_without_key=False)

    def _result(self, request: Request, template_id: str) -> dict[str, Any]:
        values = _input(PlanMigrationInputSerializer, request)
        template = plan_template_get(user=_user(request), template_id=template_id, manage=True)
        arguments = {
            "template": template,
            "from_version": values["from_version"],
            "to_version": values["to_version"],
            "plan_filter": {
                k: (list(map(str, v)) if k == "plan_ids" else v) for k, v in values["filter"].items()
            },
        }
        if values["dry_run"]:
            changes, migration = migration_preview(**arguments), None
        else:
            migration, changes = migration_apply(actor=_user(request), **arguments)
        return {
            "dry_run": values["dry_run"],
            "migration": migration.pk if migration else None,
            "state": migration.state if migration else "preview",
            "totals": {
                "plans": len(changes),
                "add": sum(len(c.add) for c in changes),
                "cancel": sum(len(c.cancel) for c in changes),
                "redate": sum(len(c.redate) for c in changes),
            },
            "plans": [c.as_dict() for c in changes],
        }
