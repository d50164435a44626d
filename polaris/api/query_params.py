"""One way for every list endpoint to read its query string.

Known parameters are validated by the endpoint's serializer; parameters another app registered (the
``extension_filters`` an endpoint passes) are handed back raw; anything else is a 400, so a misspelt
filter never silently returns everything. An empty value (``?state=``) is refused like any other invalid
value (400): leave a filter out to not filter. A parameter given twice (``?state=new&state=blocked``) is
refused too (400 naming it) rather than one value silently winning. Every list endpoint calls
``query_params_parse``, so these rules hold on all of them; ``PageQuerySerializer`` is the base for each
endpoint's query serializer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request

from polaris.errors import ValidationFailed

# Parameters DRF itself understands (renderer choice); accepted everywhere.
PASSTHROUGH_PARAMS = frozenset({"format"})
MAX_PAGE = 2**63 - 1


class PageQuerySerializer(serializers.Serializer):
    """``page`` and ``page_size``, which every list accepts (see ``polaris.api.pagination``)."""

    page = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE, help_text="1-based; past the end: an empty page."
    )
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE, help_text="At most 200; larger values are capped."
    )


def query_params_parse(
    *,
    request: Request,
    serializer_class: type[serializers.Serializer],
    extension_filters: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the query string: (validated known params, raw values of extension params)."""
    extension_filters = extension_filters or {}
    if _optional_without_defaults(serializer_class) and (paging := _paging_only(request)) is not None:
        return paging, {}
    serializer = serializer_class(data=request.query_params)
    known = set(serializer.fields)
    errors: dict[str, list[str]] = {}
    extension_values: dict[str, str] = {}
    for name, values in request.query_params.lists():
        if len(values) > 1:
            errors[name] = [f"Given {len(values)} times; give each query parameter once."]
        elif any("\x00" in value for value in values):
            errors[name] = ["Null characters are not allowed."]
        elif any(value == "" for value in values) and name not in PASSTHROUGH_PARAMS:
            errors[name] = ["May not be empty: leave the parameter out to not filter by it."]
        elif name in extension_filters and name not in known:
            extension_values[name] = values[-1]
        elif name not in known and name not in PASSTHROUGH_PARAMS:
            errors[name] = ["Unknown query parameter."]
    if not serializer.is_valid():
        errors.update(serializer.errors)
    if errors:
        raise ValidationFailed(details=errors)
    return dict(serializer.validated_data), extension_values


@functools.cache
def _optional_without_defaults(serializer_class: type[serializers.Serializer]) -> bool:
    """Whether an absent parameter adds nothing to ``serializer_class``'s validated data: a page query
    serializer whose every field is optional without a default, and no validation of its own."""
    fields = serializer_class._declared_fields
    return (
        issubclass(serializer_class, PageQuerySerializer)
        and serializer_class.validate is serializers.Serializer.validate
        and all(not field.required and field.default is empty for field in fields.values())
    )


def _paging_only(request: Request) -> dict[str, Any] | None:
    """The validated params of the commonest query strings — none, or only ``page``/``page_size`` as
    plain positive integers — without building the endpoint's serializer (a deep copy of every declared
    field, per request); ``None`` for anything else, which the serializer decides."""
    params = request.query_params
    if not params:
        return {}
    values: dict[str, Any] = {}
    for name, found in params.lists():
        if name not in PageQuerySerializer._declared_fields or len(found) != 1:
            return None
        raw = found[0]
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
            return None
        values[name] = int(raw)
    return values
