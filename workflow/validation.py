"""Field rules shared by tasks, plans and the automation that creates them: titles, slugs and who may be
the client of an agency's work. One home for each, so models, API shapes and services cannot drift."""

import re
from typing import Any

from polaris.access import is_client
from polaris.accounts.models import ClientAgencyLink

SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
TITLE_MAX_LENGTH = 200


def title_errors(title: str) -> list[str]:
    """Why ``title`` cannot name a task or plan (empty when it can)."""
    if not title.strip():
        return ["This field may not be blank."]
    if len(title) > TITLE_MAX_LENGTH:
        return [f"Ensure this field has no more than {TITLE_MAX_LENGTH} characters."]
    return []


def client_errors(client: Any, *, agency_id: Any) -> list[str]:
    """Why ``client`` cannot be the client of a task or plan of agency ``agency_id`` (empty when it can):
    it must be a client user linked to that agency (``ClientAgencyLink``)."""
    if not is_client(client):
        return ["Must be a client user."]
    if not client_is_linked(client_id=client.pk, agency_id=agency_id):
        return ["This client is not served by this agency."]
    return []


def client_is_linked(*, client_id: Any, agency_id: Any) -> bool:
    """Is the client served by the agency (the one rule for "an agency works for its linked clients")."""
    return ClientAgencyLink.objects.filter(client_id=client_id, agency_id=agency_id).exists()


def is_slug(value: str, *, max_length: int = 64) -> bool:
    """A lowercase slug such as ``intake`` or ``home-visit``."""
    return len(value) <= max_length and SLUG.match(value) is not None
