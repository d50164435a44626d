from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Trends: rollups kept by a batch dispatch handler, the report API and the admin trend charts."""

    name = "reports"
    label = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from outbox.registry import register_handler

        from .rollups import HANDLER_NAME, ROLLUP_EVENT_TYPES, rollups_apply, rollups_apply_one

        register_handler(HANDLER_NAME, rollups_apply_one, event_types=ROLLUP_EVENT_TYPES, many=rollups_apply)
