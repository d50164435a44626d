from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    """Stored first responses for requests sent with ``Idempotency-Key``."""

    name = "polaris.idempotency"
    label = "idempotency"
    verbose_name = "Idempotency keys"
