"""Action types: the registry (``registry``), templates (``templating``) and the built-in types, one
module each. ``AutomationConfig.ready()`` registers the built-ins by calling ``builtin_actions_register``.
"""


def builtin_actions_register() -> None:
    """Register the built-in action types (each module's ``@action_type`` runs on its import)."""
    from . import assign, create_task, emit_alert, update_task_state, webhook  # noqa: F401
