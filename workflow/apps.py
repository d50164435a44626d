from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"

    def ready(self) -> None:
        from outbox.events import aggregate_types_register, event_types_register
        from outbox.projection import client_projection_register

        from . import receivers  # noqa: F401  (connects the post_transition receivers)
        from .events import CLIENT_AGGREGATE_TYPE, CLIENT_PROJECTIONS, WORKFLOW_EVENT_TYPES
        from .models import ActionPlan, Task
        from .services.approvals import approval_eraser_register
        from .services.checklists import checklist_eraser_register
        from .services.erasure import workflow_erasers_register

        event_types_register(self.label, WORKFLOW_EVENT_TYPES)
        aggregate_types_register([Task.aggregate_type, ActionPlan.aggregate_type, CLIENT_AGGREGATE_TYPE])
        for event_type, projection in CLIENT_PROJECTIONS.items():
            client_projection_register(event_type, projection)
        workflow_erasers_register()
        checklist_eraser_register()
        approval_eraser_register()
