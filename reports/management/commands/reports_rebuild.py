"""``manage.py reports_rebuild``: replace the rollups with a recomputation from the event history."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from reports.rebuild import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the report rollups from the outbox history (one transaction; the rollup handler waits "
        "meanwhile and folds anything newer on top). Use after restoring a database or changing the rollups."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        result = rollups_rebuild()
        self.stdout.write(
            f"Rebuilt the rollups from {result.events} events of {result.tasks} tasks: "
            f"{len(result.rollups)} rollup rows in {time.monotonic() - started:.1f} s."
        )
