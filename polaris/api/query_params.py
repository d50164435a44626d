"""One way for every list endpoint to read its query string.

Known parameters are validated by the endpoint's serializer; parameters another app registered (the
``extension_filters`` an endpoint passes) are handed back raw; anything else is a 400, so a misspelt
filter never silently returns everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from polaris.errors import ValidationFailed

# Parameters DRF itself understands (renderer choice); accepted everywhere.
PASSTHROUGH_PARAMS = frozenset({"format"})


def query_params_parse(
    *,
    request: Request,
    serializer_class: type[serializers.Serializer],
    extension_filters: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the query string: (validated known params, raw values of extension params)."""
    extension_filters = extension_filters or {}
    serializer = serializer_class(data=request.query_params)
    known = set(serializer.fields)
    errors: dict[str, list[str]] = {}
    extension_values: dict[str, str] = {}
    for name, values in request.query_params.lists():
        if any("\x00" in value for value in values):
            errors[name] = ["Null characters are not allowed."]
        elif name in known and any(value == "" for value in values):
            # DRF reads an empty query value of an optional field as "absent": say so instead.
            errors[name] = ["This field may not be blank."]
        elif name in extension_filters and name not in known:
            extension_values[name] = values[-1]
        elif name not in known and name not in PASSTHROUGH_PARAMS:
            errors[name] = ["Unknown query parameter."]
    if not serializer.is_valid():
        errors.update(serializer.errors)
    if errors:
        raise ValidationFailed(details=errors)
    return dict(serializer.validated_data), extension_values
