"""Strict write bodies: a field the serializer does not accept is a 400 naming it, never silently dropped.

``StrictFieldsMixin`` goes first in a serializer's bases. A key that is not a writable field of the
serializer is reported in the ``VALIDATION_ERROR`` details: ``"This field is read-only."`` when it is a
read-only field of the serializer or listed in ``Meta.read_only_names`` (fields of the resource's
representation a client cannot write, such as ``state``), else ``"Unknown field."``. Those messages come
together with any other field errors of the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

READ_ONLY_MESSAGE = "This field is read-only."
UNKNOWN_MESSAGE = "Unknown field."


class StrictFieldsMixin:
    """Refuse unknown and read-only keys in a write body (a mapping); see the module docstring."""

    def strict_errors(self, data: Any) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}
        fields = self.fields  # type: ignore[attr-defined]
        writable = {name for name, field in fields.items() if not field.read_only}
        read_only = {name for name, field in fields.items() if field.read_only}
        read_only |= set(getattr(getattr(self, "Meta", None), "read_only_names", ()))
        return {
            str(key): [READ_ONLY_MESSAGE if key in read_only else UNKNOWN_MESSAGE]
            for key in data
            if key not in writable
        }

    def to_internal_value(self, data: Any) -> Any:
        extra = self.strict_errors(data)
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except serializers.ValidationError as exc:
            if extra and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **extra}) from None
            raise
        if extra:
            raise serializers.ValidationError(extra)
        return value
