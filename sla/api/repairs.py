"""SLA repair endpoints: preview or apply a repair, read repairs, read a task's SLA measurements.

Thin views over ``sla.repair`` (the preview), ``sla.repair_apply`` (the application) and ``sla.selectors``.
Admins only (SLA configs and calendars are global, not an agency's): everyone else gets 403.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.access import require_admin
from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response
from sla.api.repair_serializers import (
    SLA_REPAIR_REQUEST,
    RepairPreviewSerializer,
    SLAHistorySerializer,
    SLARepairInputSerializer,
    SLARepairSerializer,
)
from sla.repair import sla_repair_preview
from sla.repair_apply import sla_repair_create
from sla.selectors import sla_history, sla_repair_get, sla_repair_list
from workflow.api.common import caller

REPAIR_ID = OpenApiParameter("repair_id", str, OpenApiParameter.PATH, description="The repair's id (UUID).")
TASK_ID = OpenApiParameter("task_id", str, OpenApiParameter.PATH, description="The task's id (UUID).")
ADMINS_ONLY = "Only admins repair SLA records."


class SLARepairListCreateView(GenericAPIView):
    serializer_class = SLARepairSerializer

    @extend_schema(
        operation_id="sla_repairs_list",
        tags=["sla"],
        summary="List SLA repairs, newest first (admins)",
        parameters=[PageQuerySerializer],
        responses={200: SLARepairSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query_params_parse(request=request, serializer_class=PageQuerySerializer)
        page = self.paginate_queryset(sla_repair_list(user=caller(request)))
        return self.get_paginated_response(SLARepairSerializer(page, many=True).data)

    @extend_schema(
        operation_id="sla_repairs_create",
        tags=["sla"],
        summary="Preview (dry_run, the default) or apply an SLA repair (admins)",
        request=SLA_REPAIR_REQUEST,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: OpenApiResponse(
                RepairPreviewSerializer, description="The dry run: totals and a page of records."
            ),
            202: OpenApiResponse(
                SLARepairSerializer, description="Applying: the change is made; the repair runs."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            user = caller(request)
            require_admin(user, ADMINS_ONLY)
            serializer = SLARepairInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            proposal, scope = data["proposal"], data["repair_scope"]
            if not data["dry_run"]:
                repair = sla_repair_create(actor=user, proposal=proposal, scope=scope)
                return Response(SLARepairSerializer(repair).data, status=status.HTTP_202_ACCEPTED)
            preview = sla_repair_preview(
                actor=user, proposal=proposal, scope=scope, limit=data["limit"], offset=data["offset"]
            )
            body = {
                "dry_run": True,
                "as_of": preview.as_of,
                "change": proposal.as_json(),
                "scope": scope.as_json(),
                "totals": vars(preview.totals),
                "records": preview.records,
                "records_total": preview.totals.changed,
                "limit": data["limit"],
                "offset": data["offset"],
            }
            return Response(RepairPreviewSerializer(body).data)

        if not (isinstance(request.data, dict) and request.data.get("dry_run") is False):
            return perform()  # a dry run writes nothing: no key is recorded (as for a bulk dry run)
        return idempotent_response(request=request, scope="POST workflow/sla-repairs", perform=perform)


class SLARepairDetailView(GenericAPIView):
    serializer_class = SLARepairSerializer

    @extend_schema(
        operation_id="sla_repairs_retrieve",
        tags=["sla"],
        summary="An SLA repair's state and counts (admins)",
        parameters=[REPAIR_ID],
        responses={200: SLARepairSerializer},
    )
    def get(self, request: Request, repair_id: str) -> Response:
        return Response(SLARepairSerializer(sla_repair_get(user=caller(request), repair_id=repair_id)).data)


class TaskSLAHistoryView(GenericAPIView):
    serializer_class = SLAHistorySerializer

    @extend_schema(
        operation_id="tasks_sla_history",
        tags=["sla"],
        summary="A task's SLA measurements: what was promised, and what each repair re-measured (staff)",
        parameters=[TASK_ID],
        responses={200: SLAHistorySerializer},
    )
    def get(self, request: Request, task_id: str) -> Response:
        record, versions = sla_history(user=caller(request), task_id=task_id)
        body = {
            "task": record.task_id,
            "sla_record": record.pk,
            "measurement": record.measurement,
            "versions": versions,
        }
        return Response(SLAHistorySerializer(body).data)
