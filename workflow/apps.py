import importlib

from django.apps import AppConfig
from django.conf import settings


class WorkflowConfig(AppConfig):
    name = "workflow"
    verbose_name = "Workflow"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the post_transition receivers)

        # POLARIS_EXTRA_HANDLER_MODULES: modules that register dispatch handlers on import (test-only
        # handlers in worker subprocesses, site plug-ins) without workflow knowing them.
        for module in settings.OUTBOX_EXTRA_HANDLER_MODULES:
            importlib.import_module(module)
