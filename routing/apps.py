from django.apps import AppConfig


class RoutingConfig(AppConfig):
    """Routing: connects its in-transaction receivers, annotates assignments, declares its event type."""

    name = "routing"
    verbose_name = "Routing and workload"

    def ready(self) -> None:
        from outbox.events import event_types_register
        from outbox.projection import client_projection_register
        from polaris.retention import retention_register
        from workflow import extensions

        from . import receivers  # noqa: F401  (connects the task receivers)
        from .events import ROUTING_EVENT_TYPES, assignment_annotate, routing_event_for_client
        from .retention import task_routing_trim

        event_types_register(self.label, ROUTING_EVENT_TYPES)
        for event_type in ROUTING_EVENT_TYPES:  # declared: a client sees none of it
            client_projection_register(event_type, routing_event_for_client)
        if assignment_annotate not in extensions.assignment_annotators:
            extensions.assignment_annotators.append(assignment_annotate)
        retention_register("routing_decisions", task_routing_trim)
