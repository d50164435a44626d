"""Task search cost: ``?search=`` over 1,000,000 tasks, beside an unindexed ``ILIKE '%term%'`` (same rows).

Measured in one run, on a scratch database (``polaris_search_bench``, dropped at the end):

1. Seed 20,000 clients (first and last names from small lists, so a name or its start matches hundreds)
   and N tasks (default 1,000,000; ``--quick`` 100,000) set-based (``INSERT ... SELECT generate_series``):
   titles from 40 phrases, descriptions of ~25 words with a rarer code word (1 in 5,000) and a near-unique
   reference (``ref`` + 6 hex digits), spread over ten agencies.
2. Figure: what ``GET /api/workflow/tasks?search=...`` runs for its first page as an admin (all N tasks
   in scope), through the endpoint's own code: the query string parsed by the view's parser, the selector
   (``workflow.selectors.task_list``: the client-name lookup, the narrow check, the task query through
   the GIN indexes) and ``StandardPagination.paginate_queryset`` with a real request (the page of 50
   newest first, and the paginator's own count). A mix of terms: common and rare words, whole and partial
   client names, two-term searches, a reference, a miss; p50 and p99 over many runs, overall and per
   kind, with each phase's statements timed (client lookup, narrow check, page, count; the rest is
   Python). Each timed search is a first-time one: the paginator's kept count estimates are cleared
   before it (a server repeating a search within ``ESTIMATE_SECONDS`` pays less).
3. Baseline: the same page and count with the terms matched by ``ILIKE '%term%'`` on the title, the
   description and the client's names (no index can serve a leading wildcard): fewer runs (each scans
   the table), p50 and p99 of those.

Target: search p99 <= 50 ms at 1,000,000 tasks. Every match of each arm is also counted in full (untimed)
and printed: the two find the same rows on this data.

    DATABASE_URL=... REDIS_URL=... python bench/search_bench.py [--quick] [--tasks N] [--keep-db] [--reuse-db]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_search_bench"
CLIENTS = 20_000
AGENCIES = 10
PAGE = 50
FIRST_NAMES = [
    "Maria",
    "Jose",
    "Ana",
    "Luis",
    "Carmen",
    "Juan",
    "Sofia",
    "Pedro",
    "Lucia",
    "Diego",
    "Amara",
    "Kwame",
    "Chen",
    "Wei",
    "Fatima",
    "Omar",
    "Aisha",
    "Yusuf",
    "Olga",
    "Ivan",
    "Nadia",
    "Piotr",
    "Elena",
    "Marco",
    "Giulia",
    "Hannah",
    "Lukas",
    "Emma",
    "Noah",
    "Liam",
    "Mia",
    "Ella",
    "Oscar",
    "Freya",
    "Arjun",
    "Priya",
    "Ravi",
    "Meera",
    "Tomas",
    "Ines",
]
LAST_NAMES = [
    "Martinez",
    "Martin",
    "Lopez",
    "Garcia",
    "Okafor",
    "Mensah",
    "Nguyen",
    "Tran",
    "Kowalski",
    "Novak",
    "Rossi",
    "Bianchi",
    "Schmidt",
    "Muller",
    "Smith",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Johnson",
    "Roberts",
    "Walker",
    "Wright",
    "Patel",
    "Shah",
    "Singh",
    "Kumar",
    "Haddad",
    "Khalil",
    "Mansour",
    "Sato",
    "Suzuki",
    "Tanaka",
    "Kim",
    "Park",
    "Lee",
    "Choi",
    "Hansen",
    "Larsen",
    "Berg",
    "Lind",
    "Costa",
    "Silva",
    "Santos",
    "Pereira",
    "Ferreira",
    "Oliveira",
    "Dubois",
    "Laurent",
    "Moreau",
    "Fournier",
    "Girard",
    "Bonnet",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Blanc",
]
TITLES = [
    "Intake assessment",
    "Eviction notice review",
    "Housing benefit application",
    "Home visit",
    "Rent arrears plan",
    "Medical appointment escort",
    "School enrolment support",
    "Debt advice referral",
    "Food bank voucher",
    "Utility shutoff appeal",
    "Tenancy deposit dispute",
    "Mental health referral",
    "Childcare subsidy form",
    "Disability allowance review",
    "Legal aid appointment",
    "Immigration paperwork",
    "Job centre meeting",
    "Energy grant application",
    "Furniture delivery",
    "Follow-up call",
    "Safeguarding check",
    "Pension credit claim",
    "Council tax reduction",
    "Mould and damp inspection",
    "Repairs request",
    "Benefit sanction appeal",
    "Budgeting session",
    "Language class enrolment",
    "Transport pass renewal",
    "Hospital discharge plan",
    "Carer assessment",
    "Shelter placement",
    "Domestic abuse support",
    "Addiction service referral",
    "Bank account opening",
    "ID document replacement",
    "Internet access voucher",
    "Youth club referral",
    "Move-in checklist",
    "Case closure review",
]
WORDS = [
    "client",
    "called",
    "about",
    "the",
    "letter",
    "from",
    "landlord",
    "needs",
    "help",
    "with",
    "forms",
    "and",
    "documents",
    "before",
    "the",
    "deadline",
    "family",
    "of",
    "four",
    "living",
    "in",
    "temporary",
    "accommodation",
    "awaiting",
    "decision",
    "from",
    "council",
    "requested",
    "interpreter",
    "next",
    "week",
    "spoke",
    "to",
    "caseworker",
    "arranged",
    "appointment",
    "shared",
    "contact",
    "details",
    "asked",
    "for",
    "update",
    "on",
    "claim",
]
# (label, search text, ILIKE terms): what a case worker types, and the naive query's fragments.
TERMS = [
    ("common title word", "eviction", ["eviction"]),
    ("title word start", "immig", ["immig"]),
    ("description word", "interpreter", ["interpreter"]),
    ("rare code word", "w1234", ["w1234"]),
    ("reference", "ref3a9f", ["ref3a9f"]),
    ("client last name", "Okafor", ["Okafor"]),
    ("partial client name", "Mart", ["Mart"]),
    ("first + last name", "Amara Okafor", ["Amara", "Okafor"]),
    ("word + name", "eviction Lopez", ["eviction", "Lopez"]),
    ("no match", "zyxwv", ["zyxwv"]),
]


INSERT_TASKS = """
    WITH c AS (
        SELECT array_agg(id ORDER BY id) AS ids, array_agg(agency_id ORDER BY id) AS agencies
          FROM accounts_user WHERE role = 'client'
    ), w AS (SELECT %(words)s::text[] AS words, %(titles)s::text[] AS titles)
    INSERT INTO {TABLE}
        (id, title, description, task_type, service_area, priority, client_id, agency_id,
         blocked_reason, state, version, due_at, created_at, updated_at)
    SELECT gen_random_uuid(),
           w.titles[1 + (abs(hashint8extended(g, 2)) %% cardinality(w.titles))::int],
           {DESCRIPTION},
           'intake', 'housing',
           (ARRAY['low','normal','high','urgent'])[1 + (g %% 4)::int],
           c.ids[1 + (abs(hashint8extended(g, 1)) %% cardinality(c.ids))::int],
           c.agencies[1 + (abs(hashint8extended(g, 1)) %% cardinality(c.ids))::int],
           '', (ARRAY['new', 'in_progress', 'blocked', 'completed', 'cancelled'])
               [1 + (g %% 5)::int],
           1,
           now() + ((g %% 90) - 30) * interval '1 day',
           now() - g * interval '1 second', now()
      FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g, c, w
"""


def _word_sql(multiplier: int) -> str:
    return f"w.words[1 + (abs(hashint8extended(g, {multiplier})) %% cardinality(w.words))::int]"


def _description_sql() -> str:
    """~25 words: common ones, a code word (1 in 5,000: ``w1234``), a near-unique ``ref`` + 6 hex digits."""
    first = " || ' ' || ".join(_word_sql(m) for m in (31, 37, 41, 43, 47, 53))
    last = " || ' ' || ".join(_word_sql(m) for m in (59, 61, 67, 71))
    code = "'Code w' || (abs(hashint8extended(g, 3)) %% 5000) || ', ref' || substr(md5(g::text), 1, 6)"
    return f"{first} || '. ' || {code} || '. ' || {last}"


def _seed(*, tasks: int) -> None:
    from django.db import connection, transaction

    from polaris.accounts.models import Agency, ClientAgencyLink, User
    from workflow.models import Task

    agencies = Agency.objects.bulk_create(
        [Agency(name=f"Bench agency {n}", slug=f"bench-agency-{n}") for n in range(AGENCIES)]
    )
    names = random.Random(23)  # the same people every run
    clients = User.objects.bulk_create(
        [
            User(
                username=f"bench-client-{n}",
                password="!",
                role=User.Role.CLIENT,
                agency=agencies[n % AGENCIES],
                first_name=names.choice(FIRST_NAMES),
                last_name=names.choice(LAST_NAMES),
            )
            for n in range(CLIENTS)
        ],
        batch_size=5000,
    )
    ClientAgencyLink.objects.bulk_create(
        [ClientAgencyLink(client=client, agency_id=client.agency_id) for client in clients], batch_size=5000
    )
    with connection.cursor() as cursor:
        # Loaded without the search index (migration 0008's), built once at the end as CREATE INDEX
        # CONCURRENTLY would on a live table; the generated column and the other indexes stay.
        cursor.execute("DROP INDEX IF EXISTS task_search_idx")
    chunk, done = 250_000, 0
    while done < tasks:
        count = min(chunk, tasks - done)
        with transaction.atomic(), connection.cursor() as cursor:
            sql = INSERT_TASKS.replace("{TABLE}", Task._meta.db_table).replace(
                "{DESCRIPTION}", _description_sql()
            )
            cursor.execute(sql, {"words": WORDS, "titles": TITLES, "first": done + 1, "last": done + count})
        done += count
        print(f"  {done:,} tasks inserted", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute("CREATE INDEX task_search_idx ON workflow_task USING gin (search_vector)")
        cursor.execute("VACUUM ANALYZE")
    print(f"  search index built and table analysed in {time.perf_counter() - started:.1f} s", flush=True)


# A query's phase: the innermost of these functions on the stack that runs it (the selector's client-name
# lookup, its narrow check, the paginator's page and its count); anything else is "other".
PHASES = {"clients_listed": "clients", "search_matches": "narrow", "_rows": "page", "_count": "count"}
PHASE_NAMES = ("clients", "narrow", "page", "count", "other")


class _PhaseClock:
    """A database execute wrapper adding each statement's time to its phase."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def __call__(self, execute, sql, params, many, context):
        frame, phase = sys._getframe(1), "other"
        while frame is not None:
            if (name := PHASES.get(frame.f_code.co_name)) is not None:
                phase = name
                break
            frame = frame.f_back
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.spent[phase] = self.spent.get(phase, 0.0) + time.perf_counter() - started


def _request(text: str | None):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    return Request(APIRequestFactory().get("/api/workflow/tasks", {"search": text} if text else {}))


def _paginated(tasks, request) -> tuple[int, int]:
    """The first page as the endpoint paginates it (``StandardPagination``, default page size, the
    paginator's own count): (rows on the page, the response's ``count``)."""
    from polaris.api.pagination import StandardPagination

    paginator = StandardPagination()
    rows = paginator.paginate_queryset(tasks, request)
    return len(rows), paginator.count


def _indexed(admin, text: str) -> tuple[int, int]:
    """What ``GET /api/workflow/tasks?search=text`` runs for its first page: the query string parsed by
    the view's own parser, the selector, the paginator (page and count)."""
    from workflow.api.filters import task_list_params
    from workflow.selectors import task_list

    request = _request(text)
    filters, extension_values = task_list_params(request)
    tasks = task_list(user=admin, filters=filters, extension_filters=extension_values)
    return _paginated(tasks, request)


def _naive_tasks(admin, terms: list[str]):
    """The list with each term matched by ``ILIKE '%term%'`` (unindexable) instead of ``search``."""
    from django.db.models import Q

    from polaris.accounts.models import User
    from workflow.selectors import task_list

    tasks = task_list(user=admin, filters={})
    for term in terms:
        named = User.objects.filter(
            Q(first_name__icontains=term) | Q(last_name__icontains=term), role=User.Role.CLIENT
        ).values("pk")
        tasks = tasks.filter(
            Q(title__icontains=term) | Q(description__icontains=term) | Q(client_id__in=named)
        )
    return tasks


def _naive(admin, terms: list[str]) -> tuple[int, int]:
    """The same first page and count for the ILIKE list."""
    return _paginated(_naive_tasks(admin, terms), _request(None))


def _exact_matches(admin, text: str, terms: list[str]) -> tuple[int, int]:
    """Every match of each arm, counted in full (untimed): the two find the same rows."""
    from workflow.selectors import task_list

    return (
        task_list(user=admin, filters={"search": text}).order_by().count(),
        _naive_tasks(admin, terms).order_by().count(),
    )


def _timed(func, *args) -> tuple[float, dict[str, float], tuple[int, int]]:
    """``func(*args)`` as a first-time search: no count estimate kept from an earlier run of it (the
    paginator keeps them ``ESTIMATE_SECONDS`` per process; a repeated search within that time is cheaper).
    Its time, its statements' time by phase, and its result."""
    from django.db import connection

    from polaris.api import pagination

    pagination._estimates.clear()
    clock = _PhaseClock()
    with connection.execute_wrapper(clock):
        started = time.perf_counter()
        result = func(*args)
        seconds = time.perf_counter() - started
    clock.spent["other"] = seconds - sum(v for k, v in clock.spent.items() if k != "other")
    return seconds, clock.spent, result


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _seeded(tasks: int) -> bool:
    from workflow.models import Task

    return Task.objects.count() == tasks


def run(*, tasks: int, rounds: int, naive_rounds: int, reuse: bool) -> dict:
    from polaris.accounts.models import User

    if not reuse:
        _seed(tasks=tasks)
    elif not _seeded(tasks):
        raise SystemExit(f"{BENCH_DATABASE} does not hold {tasks:,} tasks: run once with --keep-db instead")
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"role": User.Role.ADMIN, "is_staff": True}
    )
    first: dict[str, float] = {}
    timed: dict[str, list[tuple[float, dict[str, float]]]] = {label: [] for label, _, _ in TERMS}
    naive: list[float] = []
    results: dict[str, dict] = {label: {} for label, _, _ in TERMS}
    for label, text, _ in TERMS:  # the first of each in this process (compiling its statements), untimed
        first[label], _, _ = _timed(_indexed, admin, text)
    for _ in range(rounds):
        for label, text, _ in TERMS:
            seconds, phases, found = _timed(_indexed, admin, text)
            timed[label].append((seconds, phases))
            results[label]["indexed"] = found
    for _ in range(naive_rounds):
        for label, _, terms in TERMS:
            seconds, _, found = _timed(_naive, admin, terms)
            naive.append(seconds)
            results[label]["naive"] = found
    for label, text, terms in TERMS:
        results[label]["exact"] = _exact_matches(admin, text, terms)
    return {"first": first, "timed": timed, "naive": naive, "results": results}


def _report(figures: dict) -> float:
    """Print the figures; the indexed p99 (seconds)."""
    timed, results = figures["timed"], figures["results"]
    print("  matches (every one counted, untimed) and what page 1 answers (rows shown, `count`):")
    for label, text, _ in TERMS:
        (page, count), (naive_page, naive_count) = results[label]["indexed"], results[label]["naive"]
        exact, naive_exact = results[label]["exact"]
        same = "same" if exact == naive_exact else "DIFFERENT"
        print(
            f"    {label:<20} {text!r:<16} {exact:>7,} indexed / {naive_exact:>7,} ILIKE ({same}); "
            f"page 1: {page} rows, count {count:,} (ILIKE: {naive_page}, {naive_count:,})"
        )
    print(
        "  per kind, ms (p50 of each phase: client lookup, narrow check, page, count, Python and the rest;"
        " first = the first run in this process):"
    )
    print(f"    {'':<20} {'p50':>7} {'p99':>7} {'first':>7} " + " ".join(f"{n:>8}" for n in PHASE_NAMES))
    for label, _, _ in TERMS:
        totals = [seconds for seconds, _ in timed[label]]
        phases = [_p([spent.get(name, 0.0) for _, spent in timed[label]], 0.5) for name in PHASE_NAMES]
        print(
            f"    {label:<20} {_p(totals, 0.5) * 1000:>7.1f} {_p(totals, 0.99) * 1000:>7.1f} "
            f"{figures['first'][label] * 1000:>7.1f} " + " ".join(f"{s * 1000:>8.1f}" for s in phases)
        )
    indexed = [seconds for samples in timed.values() for seconds, _ in samples]
    naive = figures["naive"]
    p99, naive_p99 = _p(indexed, 0.99), _p(naive, 0.99)
    verdict = "OK" if p99 <= 0.05 else "MISSED"
    print(
        f"  indexed search ({len(indexed)} searches, each a first-time one): "
        f"p50 {_p(indexed, 0.5) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (target <= 50 ms: {verdict})"
    )
    print(
        f"  ILIKE '%term%' baseline ({len(naive)} searches): p50 {_p(naive, 0.5) * 1000:.1f} ms, "
        f"p99 {naive_p99 * 1000:.1f} ms"
    )
    print(f"  ratio (baseline p99 / indexed p99): {naive_p99 / p99:.0f}x")
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    return p99


def _database_exists(url: str, database: str) -> bool:
    from scratch import admin_connection

    with admin_connection(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 tasks instead of 1,000,000")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds of the term mix (indexed)")
    parser.add_argument("--naive-rounds", type=int, default=2, help="timed rounds of the ILIKE baseline")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help=f"measure on the {BENCH_DATABASE} a --keep-db run left (migrated, not seeded again)",
    )
    args = parser.parse_args(argv)
    tasks = args.tasks or (100_000 if args.quick else 1_000_000)

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")
    reuse = args.reuse_db and _database_exists(original_url, BENCH_DATABASE)
    if not reuse:
        recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    print(f"Search benchmark: ?search= over {tasks:,} tasks and {CLIENTS:,} clients, beside ILIKE '%term%'")
    try:
        django_setup_and_migrate()
        figures = run(tasks=tasks, rounds=args.rounds, naive_rounds=args.naive_rounds, reuse=reuse)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_db or args.reuse_db:
            print(f"  kept: DATABASE_URL={os.environ['DATABASE_URL']}")
        else:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url
    return 0 if _report(figures) <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
