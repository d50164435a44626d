"""Reading settings from the environment: a few small helpers ``polaris/settings.py`` uses for every knob.

A value comes from the file ``NAME_FILE`` names (Docker/compose secrets) when that is set, else from
``NAME``; empty counts as unset.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    """The contents of the file ``NAME_FILE`` names (Docker/compose secrets) when that is set, else
    ``NAME`` from the environment, else ``default``; empty counts as unset.

    The file wins over ``NAME``: compose's ``environment:`` sets some names itself (``DATABASE_URL``,
    ``SECRET_KEY: ${SECRET_KEY:-}``), which an operator cannot unset from ``.env``, whereas ``NAME_FILE``
    is only ever set on purpose. One trailing newline (or surrounding whitespace) is dropped."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            value: str | None = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
        if not value:
            raise ImproperlyConfigured(f"{name}_FILE={path} is empty.")
    else:
        value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    return default if value is None else int(value)


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    return default if value is None else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env_str(name, default) or "").split(",") if item.strip()]
