import importlib

from django.apps import AppConfig
from django.conf import settings


class OutboxConfig(AppConfig):
    """The event vocabulary every app shares: event rows, the dispatch ledger, handlers and dispatch."""

    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        # OUTBOX_EXTRA_HANDLER_MODULES: modules that register dispatch handlers on import (test-only
        # handlers in worker subprocesses, site plug-ins) without any app knowing them.
        for module in settings.OUTBOX_EXTRA_HANDLER_MODULES:
            importlib.import_module(module)
