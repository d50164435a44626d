from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "SLA tracking"

    def ready(self) -> None:
        from workflow.api import extensions

        from . import receivers  # noqa: F401  (connects the task receivers)
        from .events import SLA_EVENT_TYPES
        from .selectors import sla_block, task_filter_sla_status, task_queryset_with_sla

        extensions.task_fields["sla"] = sla_block
        extensions.task_filters["sla_status"] = task_filter_sla_status
        if task_queryset_with_sla not in extensions.task_queryset_hooks:
            extensions.task_queryset_hooks.append(task_queryset_with_sla)
        # Listed by /api/workflow/metadata where the workflow API offers the hook.
        event_types = getattr(extensions, "event_types", None)
        if event_types is not None:
            event_types.extend(t for t in SLA_EVENT_TYPES if t not in event_types)
