"""SLA repair preview: what a target change would do to 100,000 open records, beside the direct way.

Measured in one run, on a scratch database (``polaris_sla_repair_bench``, dropped at the end):

1. Seed N open (running) SLA records (default 100,000; ``--quick`` 20,000) on a business calendar
   (Mon-Fri 09:00-17:00, Europe/London, with holidays), started over the last ten days, target 8 hours,
   some with paused time. Rows are inserted set-based (``INSERT ... SELECT generate_series``), tasks too.
2. The repair preview (``sla.repair.sla_repair_preview``) of "this config's target becomes 4 hours" over
   all of them: totals and a page of 50 records. Target: <= 10 s at 100,000 records.
3. The direct way, beside it: each record loaded as a model and re-measured by the clock's own calendar
   walk (``sla.calendar.add_working_seconds``, what ``sla.clock.sla_record_schedule`` calls), then judged.
   Timed on a sample (``--sample``, default 5,000 records) and extrapolated to N, which the output says.
   The sample's due times are checked equal to the preview's way (``sla.worktime``).

    DATABASE_URL=... REDIS_URL=... python bench/sla_repair_bench.py [--quick] [--records N] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_sla_repair_bench"
TARGET_SECONDS = 10.0


def _seed(count: int):
    """``count`` tasks with running SLA records on an office-hours config; returns the config."""
    import json

    from django.db import connection, transaction

    from polaris.accounts.models import Agency, User
    from sla.configs import sla_config_create
    from sla.models import BusinessCalendar, SLARecord
    from workflow.models import Task

    agency = Agency.objects.create(name="Bench agency", slug="bench-agency")
    client = User.objects.create(username="bench-client", role=User.Role.CLIENT, agency=agency)
    calendar = BusinessCalendar.objects.create(
        name="Bench office", time_zone="Europe/London", holidays=["2026-12-25", "2026-12-28", "2027-01-01"]
    )
    config = sla_config_create(
        actor=None, name="Bench visits", task_type="bench-visit", target_minutes=480, calendar=calendar
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Task._meta.db_table}
                (id, title, description, task_type, service_area, priority, client_id, agency_id,
                 blocked_reason, state, version, created_at, updated_at)
            SELECT gen_random_uuid(), 'Bench task ' || g, '', 'bench-visit', 'housing', 'normal', %(client)s,
                   %(agency)s, '', 'in_progress', 1, now(), now()
              FROM generate_series(1, %(count)s::int) AS g
            """,
            {"client": client.pk, "agency": agency.pk, "count": count},
        )
        cursor.execute(
            f"""
            INSERT INTO {SLARecord._meta.db_table}
                (id, task_id, config_id, target_minutes, calendar_snapshot, warning_percentages,
                 pause_states, status, started_at, due_at, next_warning_at, paused_seconds, warnings_sent,
                 version, measurement)
            SELECT gen_random_uuid(), t.id, %(config)s, 480, %(snapshot)s::jsonb, '[75]', '["blocked"]',
                   'running', t.started, t.started + interval '1 day', NULL,
                   CASE WHEN t.n %% 5 = 0 THEN (t.n %% 7200)::int ELSE 0 END, '[]'::jsonb, 0, 1
              FROM (SELECT task.id, row_number() OVER () AS n,
                           now() - (row_number() OVER () %% 14400) * interval '1 minute' AS started
                      FROM {Task._meta.db_table} AS task) AS t
            """,
            {"config": config.pk, "snapshot": json.dumps(calendar.definition())},
        )
        cursor.execute(f"ANALYZE {Task._meta.db_table}")
        cursor.execute(f"ANALYZE {SLARecord._meta.db_table}")
    return config


def _direct(config, *, sample: int, now):
    """The direct way on ``sample`` records: a model per record, the calendar walked per record."""
    from sla.calendar import add_working_seconds
    from sla.models import SLARecord

    records = SLARecord.objects.select_related("task", "config").filter(
        config=config, stopped_at__isnull=True
    )
    started = time.perf_counter()
    dues, newly_breached = {}, 0
    for record in records.order_by("id")[:sample].iterator(chunk_size=2000):
        due = add_working_seconds(record.started_at, 240 * 60 + record.paused_seconds, record.calendar)
        newly_breached += due <= now < record.due_at  # judged, as the preview judges
        dues[record.pk] = due
    return time.perf_counter() - started, dues


def run(*, records: int, sample: int) -> dict[str, float]:
    from django.db import connection
    from django.utils import timezone

    from sla.models import SLARecord
    from sla.repair import Proposal, RepairKind, RepairMeasure, RepairScope, sla_repair_preview

    print(f"seeding {records:,} open SLA records on an office-hours calendar ...", flush=True)
    started = time.perf_counter()
    config = _seed(records)
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {SLARecord._meta.db_table}")

    proposal = Proposal(kind=RepairKind.CONFIG_TARGET, config=config.pk, target_minutes=240)
    now = timezone.now()
    started = time.perf_counter()
    preview = sla_repair_preview(actor=None, proposal=proposal, scope=RepairScope(), limit=50, now=now)
    preview_seconds = time.perf_counter() - started
    assert preview.totals.total == records, preview.totals

    direct_seconds, dues = _direct(config, sample=min(sample, records), now=now)
    # The same answers: the sample's due times by the preview's lookup table.
    origin = SLARecord.objects.order_by("started_at").values_list("started_at", flat=True).first()
    measure = RepairMeasure(proposal, as_of=now, origin=origin)
    for record in SLARecord.objects.select_related("task").filter(pk__in=list(dues)[:2000]):
        assert measure.measure_record(record).new_due == dues[record.pk], record.pk
    return {
        "preview": preview_seconds,
        "direct_sample": direct_seconds,
        "sample": float(len(dues)),
        "changed": float(preview.totals.changed),
        "newly_breached": float(preview.totals.newly_breached),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 records instead of 100,000")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--sample", type=int, default=5000, help="records re-measured the direct way")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    records = args.records or (20_000 if args.quick else 100_000)

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")  # no SECRET_KEY is needed for a scratch run
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    try:
        django_setup_and_migrate()
        figures = run(records=records, sample=args.sample)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url

    sample = int(figures["sample"])
    direct_full = figures["direct_sample"] / sample * records
    ratio = direct_full / figures["preview"]
    ok = records < 100_000 or figures["preview"] <= TARGET_SECONDS
    print()
    print(
        f"SLA repair preview benchmark ({records:,} open records, office-hours calendar, target 8 h -> 4 h)"
    )
    print(
        f"  preview (totals + a page of 50): {figures['preview']:.2f} s "
        f"({int(figures['changed']):,} changed, {int(figures['newly_breached']):,} newly breached; "
        f"target <= {TARGET_SECONDS:.0f} s at 100,000: "
        f"{'OK' if ok else 'MISSED'}{'' if records >= 100_000 else ', not checked below 100,000'})"
    )
    print(
        f"  direct way (a model per record, the calendar walked per record): "
        f"{figures['direct_sample']:.2f} s "
        f"for a sample of {sample:,}, extrapolated to {records:,}: {direct_full:.2f} s (baseline)"
    )
    print(f"  ratio: the preview is {ratio:.1f}x faster than the direct way (extrapolated)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
