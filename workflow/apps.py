from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"

    def ready(self) -> None:
        from outbox.events import aggregate_types_register, event_types_register

        from . import receivers  # noqa: F401  (connects the post_transition receivers)
        from .events import WORKFLOW_EVENT_TYPES
        from .models import ActionPlan, Task

        event_types_register(self.label, WORKFLOW_EVENT_TYPES)
        aggregate_types_register([Task.aggregate_type, ActionPlan.aggregate_type])
