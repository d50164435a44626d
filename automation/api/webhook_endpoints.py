"""Webhook endpoint management (admins; a supervisor their agency's endpoints, others 404):
list/create, detail/change/delete, rotate the secret, a
signed test ping, the delivery log with its attempts, and redelivery. Thin views over
``automation.webhooks.endpoints``; a secret appears only in the create and rotate responses (an
Idempotency-Key replay of either withholds it: the key's record never stores it). Create, change, rotate
and redeliver honour ``Idempotency-Key``, each response built inside its transaction; the test ping
changes nothing here (it reports what the receiver answered now), so it takes no key."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.access import manager_scope
from polaris.accounts.models import User
from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response

from ..models import WebhookDelivery, WebhookEndpoint
from ..webhooks.delivery import webhook_ping
from ..webhooks.endpoints import (
    endpoint_get,
    webhook_delivery_redeliver,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from .common import FORBIDDEN, NOT_FOUND, IsManager
from .webhook_serializers import (
    WebhookDeliveryFilterSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointSecretSerializer,
    WebhookPingOutputSerializer,
    WebhookRotateInputSerializer,
)

INVALID = OpenApiResponse(description="VALIDATION_ERROR")
CONFLICT = OpenApiResponse(description="CONFLICT")
ENDPOINT_ID = OpenApiParameter("endpoint_id", int, OpenApiParameter.PATH)
TAGS = ["webhooks"]


def _user(request: Request) -> User:
    return cast(User, request.user)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict:
    endpoint.secret = secret
    endpoint.secret_withheld = False  # type: ignore[attr-defined]
    return dict(WebhookEndpointSecretSerializer(endpoint).data)


def _secret_withheld(body: dict) -> dict:
    """What an Idempotency-Key record keeps of a create/rotate response: everything but the secret,
    which is shown once (a replay answers ``"secret": null, "secret_withheld": true``)."""
    return {**body, "secret": None, "secret_withheld": True}


class WebhookEndpointListView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookEndpointOutputSerializer

    @extend_schema(
        operation_id="webhook_endpoints_list",
        tags=TAGS,
        summary="List webhook endpoints (admins)",
        parameters=[PageQuerySerializer],
        responses={200: WebhookEndpointOutputSerializer(many=True), 400: INVALID, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        query_params_parse(request=request, serializer_class=PageQuerySerializer)
        endpoints = WebhookEndpoint.objects.order_by("name")
        if (agency_id := manager_scope(_user(request))) is not None:
            endpoints = endpoints.filter(agency_id=agency_id)
        page = self.paginate_queryset(endpoints)
        return self.get_paginated_response(WebhookEndpointOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        tags=TAGS,
        summary="Create an endpoint; the response carries its secret, the only time it is shown",
        request=WebhookEndpointInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: WebhookEndpointSecretSerializer, 400: INVALID, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            serializer = WebhookEndpointInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            values = dict(serializer.validated_data)
            if "agency_id" not in values:  # a supervisor's own agency; an admin's: global
                values["agency_id"] = manager_scope(_user(request))
            endpoint, secret = webhook_endpoint_create(**values, actor=_user(request))
            return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

        return idempotent_response(
            request=request, scope="POST webhook-endpoints", perform=perform, redact=_secret_withheld
        )


class WebhookEndpointDetailView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookEndpointOutputSerializer

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        tags=TAGS,
        parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = endpoint_get(endpoint_id=endpoint_id, user=_user(request))
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_update",
        tags=TAGS,
        summary="Change an endpoint; enabled=true resumes its paused deliveries in order",
        parameters=[ENDPOINT_ID, IDEMPOTENCY_PARAMETER],
        request=WebhookEndpointInputSerializer(partial=True),
        responses={200: WebhookEndpointOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        def perform() -> Response:
            endpoint_get(endpoint_id=endpoint_id, user=_user(request))
            serializer = WebhookEndpointInputSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            endpoint = webhook_endpoint_update(
                endpoint_id=endpoint_id, actor=_user(request), **serializer.validated_data
            )
            return Response(WebhookEndpointOutputSerializer(endpoint).data)

        scope = f"PATCH webhook-endpoints/{endpoint_id}"
        return idempotent_response(request=request, scope=scope, perform=perform)

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        tags=TAGS,
        parameters=[ENDPOINT_ID],
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhook_endpoint_delete(endpoint_id=endpoint_id, actor=_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookRotateInputSerializer

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        tags=TAGS,
        summary="A new secret (shown once); the old one keeps signing for the grace period",
        parameters=[ENDPOINT_ID, IDEMPOTENCY_PARAMETER],
        request=WebhookRotateInputSerializer,
        responses={200: WebhookEndpointSecretSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        def perform() -> Response:
            endpoint_get(endpoint_id=endpoint_id, user=_user(request))
            serializer = WebhookRotateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            endpoint, secret = webhook_endpoint_rotate_secret(
                endpoint_id=endpoint_id,
                grace_seconds=serializer.validated_data.get("grace_seconds"),
                actor=_user(request),
            )
            return Response(_with_secret(endpoint, secret))

        return idempotent_response(
            request=request,
            scope=f"POST webhook-endpoints/{endpoint_id}/rotate-secret",
            perform=perform,
            redact=_secret_withheld,
        )


class WebhookEndpointTestView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookPingOutputSerializer

    @extend_schema(
        operation_id="webhook_endpoints_test",
        tags=TAGS,
        summary="Send a signed WebhookPing now and report what the receiver answered (records nothing)",
        parameters=[ENDPOINT_ID],
        request=None,
        responses={200: WebhookPingOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        return Response(
            WebhookPingOutputSerializer(
                webhook_ping(endpoint=endpoint_get(endpoint_id=endpoint_id, user=_user(request)))
            ).data
        )


class WebhookEndpointDeliveriesView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookDeliveryOutputSerializer

    @extend_schema(
        operation_id="webhook_endpoints_deliveries",
        tags=TAGS,
        summary="The endpoint's deliveries, newest first, each with every attempt",
        parameters=[ENDPOINT_ID, WebhookDeliveryFilterSerializer],
        responses={
            200: WebhookDeliveryOutputSerializer(many=True),
            400: INVALID,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        params, _ = query_params_parse(request=request, serializer_class=WebhookDeliveryFilterSerializer)
        endpoint = endpoint_get(endpoint_id=endpoint_id, user=_user(request))
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related("attempt_log")
        if "status" in params:
            deliveries = deliveries.filter(status=params["status"])
        page = self.paginate_queryset(deliveries.order_by("-created_at", "-id"))
        return self.get_paginated_response(WebhookDeliveryOutputSerializer(page, many=True).data)


class WebhookDeliveryRedeliverView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = WebhookDeliveryOutputSerializer

    @extend_schema(
        operation_id="webhook_deliveries_redeliver",
        tags=TAGS,
        summary="Send a finished delivery again (new attempts are added; none are erased)",
        parameters=[OpenApiParameter("delivery_id", int, OpenApiParameter.PATH), IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: WebhookDeliveryOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        def perform() -> Response:
            delivery = webhook_delivery_redeliver(delivery_id=delivery_id, actor=_user(request))
            return Response(WebhookDeliveryOutputSerializer(delivery).data)

        return idempotent_response(
            request=request, scope=f"POST webhook-deliveries/{delivery_id}/redeliver", perform=perform
        )
