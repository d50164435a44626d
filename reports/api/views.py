"""The report endpoints: thin — parse the query, resolve scope and window, call the report, serialize.

``GET /api/workflow/reports/{sla-attainment,throughput,backlog-aging,time-in-state}``; JSON, or CSV with
``Accept: text/csv`` / ``?format=csv`` (the same rows). Errors are always the JSON envelope.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.accounts.models import User
from polaris.api.query_params import query_params_parse
from polaris.api.schema import ErrorEnvelopeSerializer

from ..selectors import REPORT_FUNCTIONS, report_filters
from ..window import window_make
from .renderers import ReportCSVRenderer
from .serializers import (
    AttainmentRowSerializer,
    BacklogRowSerializer,
    ReportQuerySerializer,
    ThroughputRowSerializer,
    TimeInStateRowSerializer,
    report_serializer,
)


class ReportView(APIView):
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, ReportCSVRenderer]
    report: ClassVar[str]
    answer_serializer: ClassVar[type[serializers.Serializer]]

    def get(self, request: Request) -> Response:
        params, _ = query_params_parse(request=request, serializer_class=ReportQuerySerializer)
        user = cast(User, request.user)
        filters = report_filters(
            user=user,
            agency=params.get("agency"),
            service_area=params.get("service_area"),
            task_type=params.get("task_type"),
        )
        window = window_make(first=params["from"], last=params["to"], unit=params["bucket"], tz=params["tz"])
        rows = REPORT_FUNCTIONS[self.report](window=window, filters=filters)
        answer: dict[str, Any] = {
            "report": self.report,
            "scope": "global" if filters.agency_id is None else "agency",
            "agency_id": filters.agency_id,
            "tz": window.tz_name,
            "bucket": window.unit,
            "from": window.first,
            "to": window.last,
            "rows": rows,
        }
        data = self.answer_serializer(answer).data
        response = Response(data)
        if isinstance(request.accepted_renderer, ReportCSVRenderer):
            name = f"{self.report}-{window.first}-{window.last}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(
            getattr(response, "accepted_renderer", None), ReportCSVRenderer
        ):
            # Errors are the JSON envelope whatever the caller asked for.
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response


DESCRIPTIONS = {
    "sla-attainment": "Tasks completed per bucket within their SLA or after a breach, and the share met.",
    "throughput": "Tasks created, completed and cancelled per bucket.",
    "backlog-aging": "Open tasks by age band at each bucket's end.",
    "time-in-state": "Per bucket and state: exits from the state and the time spent in it before.",
}


def _schema(report: str, answer: type[serializers.Serializer]) -> Any:
    return extend_schema_view(
        get=extend_schema(
            operation_id="reports_" + report.replace("-", "_"),
            summary=f"Trend report: {report}",
            description=DESCRIPTIONS[report]
            + " From the rollups (docs/reports.md). Admins see every agency; agency staff their own; "
            "clients are refused (403). `Accept: text/csv` or `?format=csv` exports the rows as CSV.",
            tags=["reports"],
            parameters=[ReportQuerySerializer],
            responses={
                (200, "application/json"): answer,
                (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The rows as CSV."),
                400: OpenApiResponse(
                    ErrorEnvelopeSerializer,
                    description="VALIDATION_ERROR (an unknown tz too), INVALID_WINDOW (to before from, over "
                    "366 days, outside 1970-2999), TIME_ZONE_NOT_SUPPORTED (offset not whole hours)",
                ),
                401: OpenApiResponse(ErrorEnvelopeSerializer, description="NOT_AUTHENTICATED"),
                403: OpenApiResponse(ErrorEnvelopeSerializer, description="PERMISSION_DENIED (clients)"),
                404: OpenApiResponse(ErrorEnvelopeSerializer, description="NOT_FOUND (another agency)"),
            },
        )
    )


def _view(report: str, row: type[serializers.Serializer]) -> type[ReportView]:
    name = "".join(part.title() for part in report.split("-"))
    answer = report_serializer(f"{name}Report", row)
    view = type(f"{name}ReportView", (ReportView,), {"report": report, "answer_serializer": answer})
    return cast(type[ReportView], _schema(report, answer)(view))


SLAAttainmentReportView = _view("sla-attainment", AttainmentRowSerializer)
ThroughputReportView = _view("throughput", ThroughputRowSerializer)
BacklogAgingReportView = _view("backlog-aging", BacklogRowSerializer)
TimeInStateReportView = _view("time-in-state", TimeInStateRowSerializer)
