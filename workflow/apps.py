from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"

    def ready(self) -> None:
        from outbox.events import event_types_register
        from outbox.projection import client_projection_register

        from . import receivers  # noqa: F401  (connects the post_transition receivers)
        from .events import CLIENT_PROJECTIONS, WORKFLOW_EVENT_TYPES
        from .services.erasure import workflow_erasers_register

        event_types_register(self.label, WORKFLOW_EVENT_TYPES)
        for event_type, projection in CLIENT_PROJECTIONS.items():
            client_projection_register(event_type, projection)
        workflow_erasers_register()
