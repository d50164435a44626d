from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    verbose_name = "SLA tracking"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from outbox.events import aggregate_types_register, event_types_register
        from outbox.projection import client_projection_register
        from outbox.retention import history_keep_register
        from polaris.erasure import eraser_register
        from workflow import extensions

        from . import receivers  # noqa: F401  (connects the task receivers)
        from .erasure import sla_events_erase
        from .events import SLA_EVENT_TYPES, sla_event_for_client
        from .models import SLAConfig, SLARecord
        from .retention import open_sla_events
        from .selectors import (
            sla_at_risk_relation,
            sla_block,
            sla_config_names_forget,
            task_filter_sla_status,
            task_queryset_with_sla,
        )

        extensions.task_fields["sla"] = sla_block
        extensions.task_filters["sla_status"] = task_filter_sla_status
        extensions.task_relations["sla_at_risk"] = sla_at_risk_relation
        if task_queryset_with_sla not in extensions.task_queryset_hooks:
            extensions.task_queryset_hooks.append(task_queryset_with_sla)
        # A task's transitions and edits lock its SLA record in their compare-and-swap statement.
        if (SLARecord, "task") not in extensions.task_locked_rows:
            extensions.task_locked_rows.append((SLARecord, "task"))
        event_types_register(self.label, SLA_EVENT_TYPES)
        for event_type in SLA_EVENT_TYPES:
            client_projection_register(event_type, sla_event_for_client)
        eraser_register("sla_events", sla_events_erase)
        history_keep_register(open_sla_events)
        post_save.connect(sla_config_names_forget, sender=SLAConfig, dispatch_uid="sla.config_names_forget")
        aggregate_types_register([SLARecord.aggregate_type])
