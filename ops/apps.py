from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Observability: /metrics, /healthz, /readyz, the stats API, request logs and the admin dashboard."""

    name = "ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from . import beat_guard, celery_signals, metrics

        metrics.collector_register()
        celery_signals.connect()
        beat_guard.connect()
