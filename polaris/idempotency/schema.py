"""The ``Idempotency-Key`` header as the OpenAPI schema documents it on every state-changing endpoint."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from polaris.idempotency.services import HEADER

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[\x21-\x7e]{1,255}$",
    description=(
        "Makes the request safe to retry: the same key from the same user on the same endpoint (and "
        "object) returns the first successful response, with `Idempotent-Replayed: true`, and changes "
        "nothing again (kept IDEMPOTENCY_KEY_TTL_HOURS); the same key with a different body is 409 "
        "IDEMPOTENCY_KEY_REUSED. 1 to 255 visible ASCII characters; a UUID v4 is a good key."
    ),
)
