from django.apps import AppConfig


class CarePlansConfig(AppConfig):
    """Plan templates, plans made from them, readiness of waiting tasks, migrations between versions."""

    name = "careplans"
    verbose_name = "Care plans"

    def ready(self) -> None:
        from outbox.events import event_types_register
        from outbox.projection import client_projection_register
        from outbox.registry import register_handler
        from workflow import extensions
        from workflow.events import EventType

        from .events import CAREPLAN_EVENT_TYPES, careplan_event_for_client
        from .readiness import HANDLER_NAME, task_readiness_handle, task_readiness_handle_many
        from .services.instantiation import plan_instantiate

        event_types_register(self.label, CAREPLAN_EVENT_TYPES)
        for event_type in CAREPLAN_EVENT_TYPES:
            client_projection_register(event_type, careplan_event_for_client)
        register_handler(
            HANDLER_NAME,
            task_readiness_handle,
            event_types=[EventType.TASK_STATE_CHANGED],
            many=task_readiness_handle_many,
        )
        if plan_instantiate not in extensions.plan_instantiators:
            extensions.plan_instantiators.append(plan_instantiate)
