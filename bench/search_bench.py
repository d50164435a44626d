"""Task search cost: ``?search=`` over 1,000,000 tasks, beside an unindexed ``ILIKE '%term%'`` (same rows).

Measured in one run, on a scratch database (``polaris_search_bench``, dropped at the end):

1. Seed 20,000 clients (first and last names from small lists, so a name or its start matches hundreds)
   and N tasks (default 1,000,000; ``--quick`` 100,000) set-based (``INSERT ... SELECT generate_series``):
   titles from 40 phrases, descriptions of ~25 words with a rarer code word (1 in 5,000) and a near-unique
   reference (``ref`` + 6 hex digits), spread over ten agencies.
2. Figure: what the list endpoint runs for a search as an admin (all N tasks in scope) — the selector
   (``workflow.selectors.task_list``: the client-name lookup and the task query through the GIN indexes),
   the first page (51 rows, newest first) and, when there is a next page, the bounded count the
   paginator runs (``API_EXACT_COUNT_LIMIT`` + 1 rows at most). A mix of terms: common and rare words,
   whole and partial client names, two-term searches, a reference, a miss. p50 and p99 over many runs.
3. Baseline: the same page and count with the terms matched by ``ILIKE '%term%'`` on the title, the
   description and the client's names (no index can serve a leading wildcard): fewer runs (each scans
   the table), p50 and p99 of those.

Target: search p99 <= 50 ms at 1,000,000 tasks. The two do not match exactly the same rows (the index
finds words by their start, ILIKE fragments anywhere); the matches of each are printed.

    DATABASE_URL=... REDIS_URL=... python bench/search_bench.py [--quick] [--tasks N] [--keep-db]
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


def _indexed(admin, text: str) -> tuple[int, int]:
    """What the list endpoint runs for ``?search=text`` (first page): (rows on the page, count)."""
    from workflow.selectors import task_list

    tasks = task_list(user=admin, filters={"search": text})
    return _page_and_count(tasks)


def _page_and_count(tasks) -> tuple[int, int]:
    from django.conf import settings

    rows = list(tasks[: PAGE + 1])
    if len(rows) <= PAGE:
        return len(rows), len(rows)
    return PAGE, tasks.order_by().values("pk")[: settings.API_EXACT_COUNT_LIMIT + 1].count()


def _naive(admin, terms: list[str]) -> tuple[int, int]:
    """The same page and count, each term matched with ``ILIKE '%term%'`` (unindexable)."""
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
    return _page_and_count(tasks)


def _timed(func, *args) -> tuple[float, tuple[int, int]]:
    started = time.perf_counter()
    result = func(*args)
    return time.perf_counter() - started, result


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(*, tasks: int, rounds: int, naive_rounds: int) -> dict:
    from polaris.accounts.models import User

    _seed(tasks=tasks)
    admin = User.objects.create(username="bench-admin", role=User.Role.ADMIN, is_staff=True)
    indexed: list[float] = []
    naive: list[float] = []
    matches: dict[str, tuple] = {}
    for _label, text, _ in TERMS:  # warm: plans and pages cached like a steady server
        _indexed(admin, text)
    for _ in range(rounds):
        for label, text, _ in TERMS:
            seconds, found = _timed(_indexed, admin, text)
            indexed.append(seconds)
            matches[label] = (found,)
    for _ in range(naive_rounds):
        for label, _, terms in TERMS:
            seconds, found = _timed(_naive, admin, terms)
            naive.append(seconds)
            matches[label] = (*matches[label][:1], found)
    return {"indexed": indexed, "naive": naive, "matches": matches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 tasks instead of 1,000,000")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds of the term mix (indexed)")
    parser.add_argument("--naive-rounds", type=int, default=2, help="timed rounds of the ILIKE baseline")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    tasks = args.tasks or (100_000 if args.quick else 1_000_000)

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    print(f"Search benchmark: ?search= over {tasks:,} tasks and {CLIENTS:,} clients, beside ILIKE '%term%'")
    try:
        django_setup_and_migrate()
        figures = run(tasks=tasks, rounds=args.rounds, naive_rounds=args.naive_rounds)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url

    indexed, naive = figures["indexed"], figures["naive"]
    for label, text, _ in TERMS:
        (page, count), (naive_page, naive_count) = figures["matches"][label]
        print(
            f"    {label:<20} {text!r:<16} indexed: {count:>7,} matches ({page} on page 1); "
            f"ILIKE: {naive_count:>7,} ({naive_page})"
        )
    p99, naive_p99 = _p(indexed, 0.99), _p(naive, 0.99)
    print(
        f"  indexed search ({len(indexed)} searches): p50 {_p(indexed, 0.5) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms (target <= 50 ms: {'OK' if p99 <= 0.05 else 'MISSED'})"
    )
    print(
        f"  ILIKE '%term%' baseline ({len(naive)} searches): p50 {_p(naive, 0.5) * 1000:.1f} ms, "
        f"p99 {naive_p99 * 1000:.1f} ms"
    )
    print(f"  ratio (baseline p99 / indexed p99): {naive_p99 / p99:.0f}x")
    return 0 if p99 <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
