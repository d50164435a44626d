from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    """Stored first responses for requests sent with ``Idempotency-Key``."""

    name = "polaris.idempotency"
    label = "idempotency"
    verbose_name = "Idempotency keys"

    def ready(self) -> None:
        from polaris.erasure import eraser_register

        from .erasure import idempotency_responses_erase

        eraser_register("idempotency_keys", idempotency_responses_erase)
