"""Task search: ``?search=`` over the title, the description and the client's name, served by GIN indexes
on ``tsvector`` expressions (PostgreSQL full-text search, ``simple`` configuration, prefix queries).

Why this shape (docs/api.md, "Search", says it for users):
- People look for a task by a word of its title ("eviction") and by the start of a client's name ("Mart"
  for Martínez). Each term is a *prefix* query (``mart:*``) on every word of the title, the description
  and the client's first and last names, so both are served by the same index lookups.
- The ``simple`` configuration lowercases and never stems or drops stop words: names are not English
  words, and a prefix query already finds "visits" for "visit".
- Trigram indexes (pg_trgm) would also find fragments inside a word ("tinez"), but pg_trgm is an
  extension the embedded PostgreSQL of development and tests does not ship; core full-text search needs
  none. A fragment from the middle of a word is therefore not found: documented, and the one trade-off.
- The task's vector is a stored generated column (``search_vector``, migration 0008) rather than an
  expression index: a list ordered by ``created_at`` is best served, for common words, by walking the
  ``created_at`` index and testing each row, and testing a stored vector costs a microsecond where
  recomputing ``to_tsvector`` costs twenty (measured: 45 ms for a page). The model does not declare the
  column, so no ordinary task read or write carries it; ``TASK_SEARCH_VECTOR`` names it for the query.
- The clients' names keep an expression index (``accounts_user_name_search_idx``): that lookup is always
  a bitmap scan of the index, never a walk, so nothing is recomputed per row.

Each term must match (AND); a term matches a task when it prefixes a word of its title or description,
or of its client's first or last name. The clients are resolved first (one small indexed read) so the
task query is an OR of two index scans (the text index and ``client_id``) that PostgreSQL combines in a
BitmapOr. Staff-only text (``staff_notes``, internal block reasons) is never searched, so a client's
search cannot probe it.
"""

from __future__ import annotations

import re
from typing import cast

from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorField
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from polaris.accounts.models import User

SEARCH_CONFIG = "simple"
SEARCH_MAX_LENGTH = 100
SEARCH_MAX_TERMS = 5
SEARCH_MIN_TERM = 2  # characters: one letter prefixes most of the index, a scan of it rather than a lookup
# Clients matched by name whose ids go into the task query as a list (an index scan on client_id); a
# prefix that names more clients than this is matched with a subquery instead (the same rows, slower).
CLIENT_IDS_INLINE = 1000
# A search matching at most this many tasks in scope is read through its index and sorted; one matching
# more walks the list's order, testing each row, and finds a page within a few thousand rows.
NARROW_MATCHES = 2000

# The task's generated column (migration 0008), qualified by the table the task list selects from; and
# the expression the clients' name index is built on (migration 0008 builds it from this very expression,
# so PostgreSQL matches the query to the index).
TASK_SEARCH_VECTOR = RawSQL('"workflow_task"."search_vector"', [], output_field=SearchVectorField())
CLIENT_NAME_VECTOR = SearchVector("first_name", "last_name", config=SEARCH_CONFIG)

_WORD = re.compile(r"\w+")


def search_terms(text: str) -> list[str]:
    """The distinct space-separated terms of ``text``, in order (spaces only: the rule the API declares,
    ``workflow.api.filters.SearchField``; other whitespace inside a term separates its words)."""
    return list(dict.fromkeys(term for term in text.split(" ") if term))


def term_words(term: str) -> list[str]:
    """The words of a term as the parser would see them (``o'neil`` → ``o``, ``neil``): letters and
    digits only, lowercase. No tsquery syntax survives (``&|!():*'``)."""
    return [word.lower() for word in _WORD.findall(term)]


def term_query(term: str) -> SearchQuery | None:
    """``word:* & word:*`` for the words of ``term`` (``None``: it has none)."""
    words = term_words(term)
    if not words:
        return None
    return SearchQuery(" & ".join(f"{word}:*" for word in words), config=SEARCH_CONFIG, search_type="raw")


def clients_named(query: SearchQuery) -> QuerySet[User]:
    """The clients a word of whose first or last name ``query`` prefixes."""
    clients = User.objects.filter(role=User.Role.CLIENT).alias(name_vector=CLIENT_NAME_VECTOR)
    return cast("QuerySet[User]", clients.filter(name_vector=query))


def term_q(query: SearchQuery) -> Q:
    """The tasks ``query`` matches: in the title or description (``text_vector``), or the client's name."""
    matched = Q(text_vector=query)
    ids = list(clients_named(query).values_list("pk", flat=True)[: CLIENT_IDS_INLINE + 1])
    if len(ids) > CLIENT_IDS_INLINE:
        return matched | Q(client_id__in=clients_named(query).values("pk"))
    if ids:
        return matched | Q(client_id__in=ids)
    return matched


def tasks_search(tasks: QuerySet, text: str) -> QuerySet:
    """``tasks`` narrowed to those every term of ``text`` matches."""
    tasks = tasks.alias(text_vector=TASK_SEARCH_VECTOR)
    queries = [query for term in search_terms(text) if (query := term_query(term)) is not None]
    if not queries:  # nothing but punctuation: no word to find, so nothing is found
        return tasks.none()
    for query in queries:  # a term without a word (``!!``) narrows nothing
        tasks = tasks.filter(term_q(query))
    return tasks


def search_is_narrow(tasks: QuerySet) -> bool:
    """Does the (searched) ``tasks`` match at most ``NARROW_MATCHES`` rows? A bounded count: it reads the
    index and at most that many rows (``task_list`` picks the plan from it)."""
    return tasks.order_by().values("pk")[: NARROW_MATCHES + 1].count() <= NARROW_MATCHES
