from django.core.management.base import BaseCommand, CommandError

from polaris.accounts.models import User
from polaris.accounts.services import agency_get_or_create, user_upsert


class Command(BaseCommand):
    help = "Create or update a user with a role, agency and password, non-interactively (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--role", choices=User.Role.values, required=True)
        parser.add_argument("--agency", help="Agency name; created when missing.")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, password, role, agency, email, **options):
        agency_obj = agency_get_or_create(name=agency) if agency else None
        try:
            user, created = user_upsert(
                username=username, password=password, role=role, agency=agency_obj, email=email
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {user.role} user {user.username!r} (id {user.pk}).")
