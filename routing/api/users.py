"""``/api/workflow/users/{id}``: a worker's routing profile — away, delegate, skills, capacity (a supervisor
of the worker's agency or an admin; audited). The people list and client links are the workflow's
(``workflow.api.users``); this route is routing's so that workflow needs no knowledge of routing."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response
from workflow.api.common import caller, serializer_context

from ..models import WorkerLoad, WorkerProfile
from ..selectors import profile_of
from ..services.profiles import profile_viewable, worker_profile_update
from .common import FORBIDDEN, NOT_FOUND, VALIDATION
from .serializers import ProfileInputSerializer, ProfileOutputSerializer

USER_ID = OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The worker's id.")


def _representation(profile: WorkerProfile) -> dict[str, Any]:
    load = WorkerLoad.objects.filter(pk=profile.user_id).first()
    return ProfileOutputSerializer(
        {
            "user_id": profile.user_id,
            "away": profile.away,
            "delegate_id": profile.delegate_id,
            "service_areas": profile.service_areas,
            "task_types": profile.task_types,
            "capacity": profile.capacity,
            "open": load.open_tasks if load else 0,
            "weighted_load": load.weighted_load if load else 0,
        }
    ).data


class WorkerProfileView(APIView):
    @extend_schema(
        operation_id="worker_profile_retrieve",
        tags=["people"],
        summary="A worker's routing profile and load (supervisors of their agency, admins)",
        parameters=[USER_ID],
        responses={200: ProfileOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, user_id: str) -> Response:
        worker = profile_viewable(actor=caller(request), user_id=user_id)
        return Response(_representation(profile_of(worker.pk)))

    @extend_schema(
        operation_id="worker_profile_partial_update",
        tags=["people"],
        summary="Mark a worker away (with a delegate), or change their skills and capacity (audited; "
        "Idempotency-Key honoured)",
        parameters=[USER_ID, IDEMPOTENCY_PARAMETER],
        request=ProfileInputSerializer,
        responses={200: ProfileOutputSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def patch(self, request: Request, user_id: str) -> Response:
        def perform() -> Response:
            profile_viewable(actor=caller(request), user_id=user_id)  # 403/404 before the body
            serializer = ProfileInputSerializer(
                data=request.data, partial=True, context=serializer_context(request)
            )
            serializer.is_valid(raise_exception=True)
            profile = worker_profile_update(
                actor=caller(request), user_id=user_id, changes=dict(serializer.validated_data)
            )
            return Response(_representation(profile))

        return idempotent_response(request=request, scope=f"PATCH workflow/users/{user_id}", perform=perform)
