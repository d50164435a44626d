"""Field rules shared by tasks, plans and the automation that creates them: titles and slugs."""

import re

SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
TITLE_MAX_LENGTH = 200


def title_errors(title: str) -> list[str]:
    """Why ``title`` cannot name a task or plan (empty when it can)."""
    if not title.strip():
        return ["This field may not be blank."]
    if len(title) > TITLE_MAX_LENGTH:
        return [f"Ensure this field has no more than {TITLE_MAX_LENGTH} characters."]
    return []


def is_slug(value: str, *, max_length: int = 64) -> bool:
    """A lowercase slug such as ``intake`` or ``home-visit``."""
    return len(value) <= max_length and SLUG.match(value) is not None
