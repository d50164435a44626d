"""Action types: the registry (``registry``), templates (``templating``) and the built-in types.

Importing the package registers the built-ins, so ``registry.ACTION_TYPES`` is complete for anyone
who imports from it.
"""

from . import create_task, emit_alert, update_task_state, webhook

__all__ = ["create_task", "emit_alert", "update_task_state", "webhook"]
