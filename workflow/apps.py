from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"

    def ready(self) -> None:
        from outbox.events import event_types_register

        from . import receivers  # noqa: F401  (connects the post_transition receivers)
        from .events import WORKFLOW_EVENT_TYPES
        from .services.erasure import workflow_erasers_register

        event_types_register(self.label, WORKFLOW_EVENT_TYPES)
        workflow_erasers_register()
