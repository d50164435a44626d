from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: who changed which configuration or access, when, from what to what."""

    name = "polaris.audit"
    label = "audit"
    verbose_name = "Audit log"
