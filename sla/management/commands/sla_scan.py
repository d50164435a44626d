from django.core.management.base import BaseCommand

from sla.scan import sla_scan


class Command(BaseCommand):
    help = "Breach overdue SLA records and write due warnings (the same work as the sla.sla_scan beat task)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=None, help="Records per transaction.")

    def handle(self, *args, batch_size: int | None = None, **options) -> None:
        result = sla_scan(batch_size=batch_size)
        self.stdout.write(f"{result.breached} breached, {result.warned} warnings written")
