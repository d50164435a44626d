from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from outbox.registry import register_handler

        from .engine import HANDLER_NAME, automation_handle_event
        from .models import Trigger
        from .ruleset import ruleset_invalidate

        # Every event type: triggers can listen to any of them, including other apps' (SLA) events.
        register_handler(HANDLER_NAME, automation_handle_event)
        post_save.connect(ruleset_invalidate, sender=Trigger, dispatch_uid="automation.trigger_cache_save")
        post_delete.connect(
            ruleset_invalidate, sender=Trigger, dispatch_uid="automation.trigger_cache_delete"
        )
