"""Small pieces the resource views share: pagination, request context and schema parameters."""

from __future__ import annotations

import re
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.accounts.models import User
from polaris.api.pagination import StandardPagination
from polaris.errors import ValidationFailed
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER

__all__ = ["IDEMPOTENCY_PARAMETER"]  # re-exported: the workflow views import it from here


def uuid_path_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH, description=description)


def caller(request: Request) -> User:
    """The authenticated user (every workflow view requires authentication)."""
    return cast(User, request.user)


def correlation_id_of(request: Request) -> str | None:
    """The id the correlation middleware bound to this request (events store it)."""
    return getattr(request, "correlation_id", None)


def serializer_context(request: Request) -> dict[str, Any]:
    return {"request": request}


def paginated_response(
    *, view: APIView, request: Request, queryset: QuerySet, serializer_class: type[serializers.Serializer]
) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer_class(page, many=True, context=serializer_context(request)).data
    return paginator.get_paginated_response(data)


MAX_IF_MATCH_TAGS = 32
_ENTITY_TAG = '(?:W/)?"[0-9]{1,18}"'
# RFC 9110: "*" or a comma-separated list of entity tags (here: quoted versions, weak or strong).
IF_MATCH_PATTERN = rf"^(\*|{_ENTITY_TAG}( *, *{_ENTITY_TAG}){{0,{MAX_IF_MATCH_TAGS - 1}}})$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_VERSION = re.compile(r'"([0-9]{1,18})"')

IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    pattern=IF_MATCH_PATTERN,
    description=(
        'The ETag (`"<version>"`) of the representation the change is based on, or a comma-separated '
        f'list of up to {MAX_IF_MATCH_TAGS} (`"1", "3"`: any may match): if the object is at none of them, '
        "nothing is written and the answer is 412 PRECONDITION_FAILED. `*` matches any version. Without "
        "it, a concurrent change is still detected (409 CONCURRENT_MODIFICATION)."
    ),
)


def if_match_version(request: Request) -> int | frozenset[int] | None:
    """The version(s) an ``If-Match`` header names: one (``"3"``, ``W/"3"``), several (``"1", "3"``: the
    change goes ahead when the object is at any of them), or ``None`` without one or for ``*``."""
    value = request.headers.get("If-Match")
    if value is None:
        return None
    value = value.strip()
    if not _IF_MATCH.match(value):
        raise ValidationFailed(
            details={"If-Match": ['Send the ETag of the representation, e.g. "3", or a list: "1", "3".']}
        )
    if value == "*":
        return None
    named = frozenset(int(version) for version in _VERSION.findall(value))
    return next(iter(named)) if len(named) == 1 else named


def with_etag(response: Response, version: int) -> Response:
    """``ETag: "<version>"``: the version doubles as the entity tag."""
    response["ETag"] = f'"{version}"'
    return response
