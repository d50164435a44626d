"""``GET /api/workflow/audit``: the audit log, newest first (admins: all; supervisors: their agency;
others: 403). Thin: parse the filters, call the selector, serialize."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.accounts.models import User
from polaris.api.query_params import PageQuerySerializer, query_params_parse

from ..models import AuditEntry
from ..selectors import audit_list


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    agency = serializers.UUIDField(source="agency_id", allow_null=True)

    class Meta:
        model = AuditEntry
        fields = (
            "id",
            "at",
            "actor",
            "actor_username",
            "agency",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "correlation_id",
        )


class AuditFilterSerializer(PageQuerySerializer):
    actor = serializers.IntegerField(required=False, min_value=1, help_text="The acting user's id.")
    object_type = serializers.CharField(required=False, max_length=64)
    object_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time.")


class AuditListView(GenericAPIView):
    serializer_class = AuditEntryOutputSerializer

    @extend_schema(
        operation_id="audit_list",
        tags=["audit"],
        summary="The audit log, newest first (admins: all; supervisors: their agency; others: 403)",
        parameters=[AuditFilterSerializer],
        responses={
            200: AuditEntryOutputSerializer(many=True),
            400: OpenApiResponse(description="VALIDATION_ERROR"),
            403: OpenApiResponse(description="PERMISSION_DENIED"),
        },
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=AuditFilterSerializer)
        entries = audit_list(user=cast(User, request.user), filters=filters)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AuditEntryOutputSerializer(page, many=True).data)
