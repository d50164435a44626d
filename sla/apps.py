from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "SLA tracking"

    def ready(self) -> None:
        from outbox.events import aggregate_types_register, event_types_register
        from workflow import extensions

        from . import receivers  # noqa: F401  (connects the task receivers)
        from .events import SLA_EVENT_TYPES
        from .models import SLARecord
        from .selectors import sla_block, task_filter_sla_status, task_queryset_with_sla

        extensions.task_fields["sla"] = sla_block
        extensions.task_filters["sla_status"] = task_filter_sla_status
        if task_queryset_with_sla not in extensions.task_queryset_hooks:
            extensions.task_queryset_hooks.append(task_queryset_with_sla)
        # A task's transitions and edits lock its SLA record in their compare-and-swap statement.
        if (SLARecord, "task") not in extensions.task_locked_rows:
            extensions.task_locked_rows.append((SLARecord, "task"))
        event_types_register(self.label, SLA_EVENT_TYPES)
        aggregate_types_register([SLARecord.aggregate_type])
