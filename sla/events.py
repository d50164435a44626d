"""Event types the SLA app writes to the outbox (aggregate ``sla_record``)."""


class SLAEventType:
    SLA_WARNING = "SLAWarning"
    SLA_BREACHED = "SLABreached"


SLA_EVENT_TYPES = (SLAEventType.SLA_WARNING, SLAEventType.SLA_BREACHED)
