from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: who changed which configuration or access, when, from what to what."""

    name = "polaris.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from polaris.erasure import eraser_register
        from polaris.retention import retention_register

        from .services import audit_entries_erase, audit_entries_trim

        eraser_register("audit_entries", audit_entries_erase)
        retention_register("audit_entries", audit_entries_trim)
