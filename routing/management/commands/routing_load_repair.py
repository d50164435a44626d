"""``manage.py routing_load_repair [--check]``: recount the workers' load counters and fix the drifted."""

from django.core.management.base import BaseCommand

from routing.load import load_drift, load_repair


class Command(BaseCommand):
    help = "Recount the routing load counters from the open tasks; fix (or, with --check, list) drift."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Report drift, change nothing (exit 1).")

    def handle(self, *args, check: bool = False, **options):
        if check:
            drift = load_drift()
            for user_id, values in drift.items():
                self.stdout.write(f"user {user_id}: stored {values['stored']}, counted {values['counted']}")
            if drift:
                raise SystemExit(1)
            self.stdout.write("no drift")
            return
        self.stdout.write(f"repaired {load_repair()} workers")
