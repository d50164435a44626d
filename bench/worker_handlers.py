"""Loaded by the benchmarks' worker subprocesses (``OUTBOX_EXTRA_HANDLER_MODULES=bench.worker_handlers``)."""

from tests.support.effect_probe import register

register()
