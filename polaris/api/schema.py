"""OpenAPI generation: the error envelope as one component, attached to every operation.

``EnvelopeAutoSchema`` (the project's ``DEFAULT_SCHEMA_CLASS``) adds the documented error responses to
each operation that does not declare them itself, so no endpoint can forget them.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from polaris.api.strict import StrictFieldsMixin


class ErrorEnvelopeSerializer(serializers.Serializer):
    """The body of every error response."""

    success = serializers.BooleanField(help_text="Always false.")
    error_code = serializers.CharField(help_text="UPPER_SNAKE code, e.g. INVALID_TRANSITION.")
    message = serializers.CharField(help_text="A human sentence.")
    details = serializers.DictField(
        child=serializers.JSONField(), help_text="Field errors, guard names, or other specifics."
    )

    class Meta:
        ref_name = "ErrorEnvelope"


ERROR_DESCRIPTIONS = {
    "400": "VALIDATION_ERROR (bad body or query; details maps fields to messages), "
    "INVALID_TRANSITION or GUARD_FAILED (details.guards).",
    "401": "NOT_AUTHENTICATED: no or bad credentials.",
    "403": "PERMISSION_DENIED: in scope, but the caller's role may not do this.",
    "404": "NOT_FOUND: absent, or outside the caller's scope.",
    "409": "CONCURRENT_MODIFICATION (lost a race) or IDEMPOTENCY_KEY_REUSED (same key, different body).",
    "412": "PRECONDITION_FAILED: If-Match named a version that is no longer current; reload and retry.",
    "415": "UNSUPPORTED_MEDIA_TYPE: send application/json.",
    "429": "THROTTLED: rate limit exceeded; retry after the Retry-After header.",
}


def error_response(code: str, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorEnvelopeSerializer, description=description or ERROR_DESCRIPTIONS.get(code, "")
    )


class DistinctListField(serializers.ListField):
    """A list whose items must be distinct (its serializer refuses repeats): the schema says uniqueItems."""


NO_NUL_PATTERN = "^[^\\x00]*$"
# Not blank once trimmed (DRF strips whitespace, then refuses ""): one non-space character at least. Python's
# strip() also removes \x1c-\x1f and \x85, which a JSON Schema (ECMAScript) ``\s`` does not cover: named too.
NON_BLANK_PATTERN = "^[^\\x00]*[^\\x00\\s\\x1c-\\x1f\\x85][^\\x00]*$"


class EnvelopeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error envelope on 400/401/403/404/409/429 (415 with a body).

    A field can say more than its class does, read when the document is generated (so values registered
    at start-up, such as event types, are listed): ``openapi_schema()`` (its whole schema),
    ``openapi_enum()`` (the values it accepts), ``openapi_format`` (a string format). A request serializer
    can add ``openapi_exactly_one_of`` (field names) and ``openapi_any_of`` (JSON Schema alternatives).
    """

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if hasattr(field, "openapi_schema"):
            return field.openapi_schema()
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema is not None and hasattr(field, "openapi_enum"):
            schema["enum"] = field.openapi_enum()
        if schema is not None and hasattr(field, "openapi_format"):
            schema["format"] = field.openapi_format
        return schema

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404", "409", "429"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("415")
        if any(
            getattr(parameter, "name", None) == "If-Match" for parameter in self.get_override_parameters()
        ):
            codes.append("412")
        return codes

    # The direction of the serializer being mapped: drf-spectacular does not pass it to
    # ``_insert_field_validators``, and input rules (the NUL patterns below) belong to requests only.
    _direction: str | None = None

    def _map_basic_serializer(self, serializer, direction):
        outer, self._direction = self._direction, direction
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            self._direction = outer

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # A read-only slug renders a model field that may be blank; drf-spectacular's pattern says "one or
        # more" characters, which would make valid responses fail validation.
        if (
            isinstance(field, serializers.SlugField)
            and field.read_only
            and schema.get("pattern", "").endswith("+$")
        ):
            schema["pattern"] = schema["pattern"][:-2] + "*$"
        if isinstance(field, DistinctListField):
            schema["uniqueItems"] = True
        # DRF's CharField refuses NUL characters (ProhibitNullCharactersValidator): say so, so that clients
        # (and fuzzers) know such a string is invalid input rather than a valid one the server rejects.
        # Input only: an output-only serializer's fields are not read-only, yet nothing validates what it
        # renders (a webhook ping's empty ``response_excerpt`` broke a pattern stated for its response).
        if (
            self._direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.read_only
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            blank_refused = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NON_BLANK_PATTERN if blank_refused else NO_NUL_PATTERN

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # A serializer that needs exactly one of some fields says so with ``openapi_exactly_one_of``.
        exactly_one = getattr(serializer, "openapi_exactly_one_of", None)
        if exactly_one and direction == "request":
            schema["oneOf"] = [{"required": [name]} for name in exactly_one]
            schema.setdefault("description", "Give exactly one of: " + ", ".join(exactly_one) + ".")
        any_of = getattr(serializer, "openapi_any_of", None)
        if any_of and direction == "request" and not getattr(serializer, "partial", False):
            schema["anyOf"] = list(any_of)
        # A strict body (polaris.api.strict) refuses keys it does not declare: the schema says so.
        strict = isinstance(serializer, StrictFieldsMixin) or (
            isinstance(serializer, type) and issubclass(serializer, StrictFieldsMixin)
        )
        if direction == "request" and strict:
            schema["additionalProperties"] = False
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        # drf-spectacular calls a body required when its component lists required fields, which a
        # ``oneOf`` of shapes (a bulk request) has none of at its top: required when every shape is.
        if isinstance(serializer, PolymorphicProxySerializer) and self.method != "PATCH":
            shapes = serializer.serializers
            shapes = shapes.values() if isinstance(shapes, dict) else shapes
            required = all(
                any(field.required for field in force_instance(shape).fields.values()) for shape in shapes
            )
        return schema, required

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(error_response(code), code, direction=direction)
        for code, response in responses.items():
            # An error declared with only a description still has the envelope as its body.
            if code.startswith(("4", "5")) and "content" not in response:
                description = response.get("description") or ERROR_DESCRIPTIONS.get(code, "")
                responses[code] = self._get_response_for_code(
                    error_response(code, description), code, direction=direction
                )
        return responses
