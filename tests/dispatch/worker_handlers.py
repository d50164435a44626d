"""Loaded by worker subprocesses via ``POLARIS_EXTRA_HANDLER_MODULES=tests.dispatch.worker_handlers``."""

from tests.dispatch.effects import register

register()
