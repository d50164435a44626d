from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from workflow.dispatch.registry import register_handler

        from .engine import HANDLER_NAME, automation_handle_event

        # Every event type: triggers can listen to any of them, including other apps' (SLA) events.
        register_handler(HANDLER_NAME, automation_handle_event)
