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
or of its client's first or last name. The clients are resolved first (one small indexed read per term),
and the terms that name some are expanded into an OR of arms (``search_q``), each one text query and one
list of client ids, that PostgreSQL reads through the text index and ``client_id`` (BitmapAnd within an
arm, BitmapOr across them). Staff-only text (``staff_notes``, internal block reasons) is never searched,
so a client's search cannot probe it.

What a search costs (docs/performance.md, "Search"): one bounded read of its matches through the indexes
(``search_matches``: up to ``NARROW_MATCHES + 1``) decides the plan and is the list's count; a few
matches' page is then read by id, many matches' by walking the list's order. The text index's lookup of a
common word (every matching row's id, a fraction of a microsecond each) is most of a search's cost; it
runs once per search.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import cast

from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact, SearchVectorField
from django.db import connections, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from polaris.accounts.models import User
from polaris.sql.querysets import pks_counted_up_to

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

# The bounded read's planner costs a random page read at most 1.1 sequential ones (PostgreSQL's advice for
# cached or solid-state storage; its default, 4, is a spinning disk's): at 4 it read a client's name
# through a sequential scan testing every row (55,000 rows for "Mart", 30-50 ms) rather than through the
# client index (15-20 ms); no kind of search measured read more (docs/performance.md, "Search").
SEARCH_RANDOM_PAGE_COST = 1.1
RANDOM_PAGE_COST_AT_MOST = (  # the value it had, and it lowered for the rest of the transaction
    "SELECT current_setting('random_page_cost'), set_config('random_page_cost', "
    "least(current_setting('random_page_cost')::float8, %s)::text, true)"
)

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


def term_tsquery(term: str) -> str | None:
    """``word:* & word:*`` for the words of ``term``, as tsquery text (``None``: it has none)."""
    words = term_words(term)
    return " & ".join(f"{word}:*" for word in words) if words else None


def tsquery(text: str) -> SearchQuery:
    return SearchQuery(text, config=SEARCH_CONFIG, search_type="raw")


def term_query(term: str) -> SearchQuery | None:
    """``word:* & word:*`` for the words of ``term`` (``None``: it has none)."""
    text = term_tsquery(term)
    return None if text is None else tsquery(text)


def text_matches(text: str) -> Q:
    """The tsquery ``text`` matches the task's title or description (its stored vector, read through
    ``task_search_idx``). A lookup, not an alias: a list with no annotation keeps its compiled statement
    (``polaris.sql.querysets``)."""
    return Q(SearchVectorExact(TASK_SEARCH_VECTOR, tsquery(text)))


def clients_named(query: SearchQuery) -> QuerySet[User]:
    """The clients a word of whose first or last name ``query`` prefixes."""
    clients = User.objects.filter(role=User.Role.CLIENT).alias(name_vector=CLIENT_NAME_VECTOR)
    return cast("QuerySet[User]", clients.filter(name_vector=query))


def clients_listed(query: SearchQuery) -> frozenset[int] | None:
    """The ids of the clients ``query`` names (one indexed read), or ``None`` when they are more than
    ``CLIENT_IDS_INLINE``."""
    ids = list(clients_named(query).values_list("pk", flat=True)[: CLIENT_IDS_INLINE + 1])
    return None if len(ids) > CLIENT_IDS_INLINE else frozenset(ids)


def client_among(ids: frozenset[int]) -> Q:
    """The task's client is one of ``ids``: one array parameter (``= ANY``), whatever their number, so
    the statement is the same text for any list (compiled once: ``polaris.sql.querysets``)."""
    among = RawSQL(
        '"workflow_task"."client_id" = ANY(%s::bigint[])', [sorted(ids)], output_field=BooleanField()
    )
    return Q(among)


def search_q(words_only: list[str], named: list[tuple[str, frozenset[int]]]) -> Q:
    """Every term matches: ``words_only`` (tsquery texts) in the title or description; each of ``named``
    there or by the client's name (one of its client ids).

    That is a product of ORs, written here as its expansion: an OR over which of the named terms match
    by the client, each arm one text query (all its terms ANDed in one tsquery: one lookup in the text
    index) and the clients every one of its named terms names (intersected here; an arm whose
    intersection is empty is left out). PostgreSQL reads each arm through its indexes and ANDs them
    within the arm; the product it does not: for ``eviction lopez`` it folded the word into the OR's
    text arm and filtered the heap for it, 18,000 rows read for 436 matches (docs/performance.md).
    At most 2 ** SEARCH_MAX_TERMS arms; a term names a client only when a client's name starts so.
    """
    arms: Q | None = None
    for by_client in itertools.product((False, True), repeat=len(named)):
        texts = words_only + [text for (text, _), client in zip(named, by_client, strict=True) if not client]
        clients = [ids for (_, ids), client in zip(named, by_client, strict=True) if client]
        arm = text_matches(" & ".join(texts)) if texts else Q()
        if clients:
            common = frozenset.intersection(*clients)
            if not common:
                continue
            arm &= client_among(common)
        arms = arm if arms is None else arms | arm
    assert arms is not None  # the arm matching every term by its words is never left out
    return arms


def tasks_search(tasks: QuerySet, text: str) -> QuerySet:
    """``tasks`` narrowed to those every term of ``text`` matches."""
    texts = [words for term in search_terms(text) if (words := term_tsquery(term)) is not None]
    if not texts:  # nothing but punctuation: no word to find, so nothing is found
        return tasks.none()
    words_only: list[str] = []
    named: list[tuple[str, frozenset[int]]] = []
    for query_text in texts:  # a term without a word (``!!``) narrows nothing
        query = tsquery(query_text)
        ids = clients_listed(query)
        if ids is None:  # too many clients to list: this term is a condition of its own, with a subquery
            tasks = tasks.filter(
                text_matches(query_text) | Q(client_id__in=clients_named(query).values("pk"))
            )
        elif ids:
            named.append((query_text, ids))
        else:
            words_only.append(query_text)
    if not (words_only or named):
        return tasks
    return tasks.filter(search_q(words_only, named))


def search_matches(tasks: QuerySet) -> tuple[int, list[uuid.UUID] | None]:
    """How many tasks the searched ``tasks`` matches, counted no further than ``NARROW_MATCHES + 1``, and
    their ids when they are at most ``NARROW_MATCHES``: one bounded read through the indexes. ``task_list``
    reads a page of few matches by these ids (the index lookups are not run again), and the paginator takes
    the count as the list's (exact up to ``NARROW_MATCHES``, an estimate beyond) rather than count again."""
    connection = connections[tasks.db]
    enclosed = connection.in_atomic_block  # else the setting ends with this read's own transaction
    with transaction.atomic(using=tasks.db):
        with connection.cursor() as cursor:
            cursor.execute(RANDOM_PAGE_COST_AT_MOST, [SEARCH_RANDOM_PAGE_COST])
            before = cursor.fetchone()[0]
        matches = pks_counted_up_to(tasks, NARROW_MATCHES)
        if enclosed:  # the rest of the enclosing transaction plans as before
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('random_page_cost', %s, true)", [before])
    return matches


def task_among(ids: list[uuid.UUID]) -> Q:
    """The task is one of ``ids`` (one array parameter, like ``client_among``)."""
    among = RawSQL('"workflow_task"."id" = ANY(%s::uuid[])', [ids], output_field=BooleanField())
    return Q(among)
