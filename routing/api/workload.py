"""``GET /api/workflow/workload``: an agency's workload (supervisors and agents: their own agency, read-only;
admins: ``?agency=``; clients 403)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.query_params import query_params_parse
from workflow.api.common import caller

from ..workload import workload, workload_agency
from .common import FORBIDDEN, NOT_FOUND, VALIDATION
from .serializers import WorkloadQuerySerializer, WorkloadSerializer


class WorkloadView(APIView):
    @extend_schema(
        operation_id="workload_retrieve",
        tags=["routing"],
        summary="Caseload per worker (open, weighted load, overdue, at risk, oldest open, away), the "
        "unassigned queue by age, totals by service area",
        parameters=[WorkloadQuerySerializer],
        responses={200: WorkloadSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=WorkloadQuerySerializer)
        agency = workload_agency(user=caller(request), agency_id=filters.get("agency"))
        return Response(WorkloadSerializer(workload(agency=agency)).data)
