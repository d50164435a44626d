from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from outbox.events import aggregate_types_register, event_types_register
        from outbox.registry import register_handler
        from workflow import extensions

        from .actions import builtin_actions_register
        from .engine import HANDLER_NAME, automation_handle_event
        from .erasure import automation_erasers_register
        from .models import Trigger
        from .retention import automation_retention_register
        from .ruleset import ruleset_invalidate
        from .selectors import task_queryset_with_timers, task_timers_block
        from .timers import TIMER_AGGREGATE, TIMER_FIRED
        from .webhooks import subscriptions

        # Every event type: triggers can listen to any of them, including other apps' (SLA) events.
        builtin_actions_register()
        register_handler(HANDLER_NAME, automation_handle_event)
        # Every event type: which types an endpoint subscribes to is data, read per batch.
        register_handler(
            subscriptions.HANDLER_NAME,
            subscriptions.webhook_subscriptions_handle,
            many=subscriptions.webhook_subscriptions_handle_many,
        )
        event_types_register("automation", [TIMER_FIRED])
        automation_erasers_register()
        automation_retention_register()
        aggregate_types_register([TIMER_AGGREGATE])
        extensions.task_fields["timers"] = task_timers_block
        if task_queryset_with_timers not in extensions.task_queryset_hooks:
            extensions.task_queryset_hooks.append(task_queryset_with_timers)
        post_save.connect(ruleset_invalidate, sender=Trigger, dispatch_uid="automation.trigger_cache_save")
        post_delete.connect(
            ruleset_invalidate, sender=Trigger, dispatch_uid="automation.trigger_cache_delete"
        )
