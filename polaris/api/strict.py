"""Strict write bodies: a field the serializer does not accept is a 400 naming it, never silently dropped.

``StrictFieldsMixin`` goes first in a serializer's bases. A key that is not a writable field of the
serializer is reported in the ``VALIDATION_ERROR`` details: ``"This field is read-only."`` when it is a
read-only field of the serializer or listed in ``Meta.read_only_names`` (fields of the resource's
representation a client cannot write, such as ``state``), else ``"Unknown field."``. Those messages come
together with any other field errors of the body.

A value of the wrong JSON type is refused too (``JSON_TYPE_MESSAGES``): DRF's fields would quietly turn
``55`` into ``"55"`` for a string, ``"true"`` into ``True`` for a boolean or ``"7"`` into ``7`` for an
integer, while the schema declares ``string``, ``boolean`` and ``integer``. ``null`` is left to the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

READ_ONLY_MESSAGE = "This field is read-only."
UNKNOWN_MESSAGE = "Unknown field."
# (field class, accepted JSON types, message); the first match decides. A boolean is never a number here.
JSON_TYPES: tuple[tuple[type[serializers.Field], tuple[type, ...], str], ...] = (
    (serializers.BooleanField, (bool,), "Must be true or false."),
    (serializers.IntegerField, (int,), "Must be an integer."),
    (serializers.FloatField, (int, float), "Must be a number."),
    (serializers.CharField, (str,), "Must be a string."),
    (serializers.UUIDField, (str,), "Must be a string."),
)


def json_type_problem(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` (parsed JSON, not null) has the wrong type for ``field``, or ``None``."""
    for field_class, types, message in JSON_TYPES:
        if isinstance(field, field_class):
            wrong = isinstance(value, bool) and bool not in types
            return message if wrong or not isinstance(value, types) else None
    return None


class StrictFieldsMixin:
    """Refuse unknown and read-only keys in a write body (a mapping); see the module docstring."""

    def strict_errors(self, data: Any) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}
        fields = self.fields  # type: ignore[attr-defined]
        writable = {name for name, field in fields.items() if not field.read_only}
        read_only = {name for name, field in fields.items() if field.read_only}
        read_only |= set(getattr(getattr(self, "Meta", None), "read_only_names", ()))
        errors = {
            str(key): [READ_ONLY_MESSAGE if key in read_only else UNKNOWN_MESSAGE]
            for key in data
            if key not in writable
        }
        for name in writable & set(data):
            value = data[name]
            if value is not None and (problem := json_type_problem(fields[name], value)):
                errors[name] = [problem]
        return errors

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
