"""Loaded by worker subprocesses via ``OUTBOX_EXTRA_HANDLER_MODULES=tests.outbox.worker_handlers``."""

from tests.support.effect_probe import register

register()
