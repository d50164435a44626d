"""A synthetic but realistic history of task events, written set-based (one INSERT … SELECT).

For benchmarks that read history (the trigger backtest): the facts a predicate reads must have the
cardinality of a real deployment, or grouping and memoisation make the read look faster than it is.

- 13 task types and 8 service areas with skewed frequencies, 4 priorities (mostly ``normal``), 250
  agencies (a few large ones), 120,000 clients, 1,800 assignees, plans on 60 % of tasks; a title per task.
- Three state changes per task (``sequence`` 2, 3, 4), spread over the window, each a transition with
  ``old_state``/``new_state`` as the state machine allows them.
- ``reason``: empty for start, unblock and complete (as the API leaves it); for block and cancel one of
  the usual phrases, seven times in ten followed by what agents type after it (a reference, a date, a
  name), so most of those reasons are distinct. ``reason_everywhere`` gives *every* event such a
  note, numbered: the worst case, where no two events have the same facts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

TASK_TYPES = {
    "intake": 25,
    "assessment": 18,
    "follow-up": 15,
    "referral": 10,
    "home-visit": 7,
    "document-review": 6,
    "benefits-application": 5,
    "housing-search": 4,
    "case-review": 3,
    "court-accompaniment": 2,
    "discharge-planning": 2,
    "crisis-response": 2,
    "employment-coaching": 1,
}
SERVICE_AREAS = {
    "housing": 28,
    "health": 18,
    "income": 14,
    "employment": 10,
    "family": 9,
    "legal": 8,
    "mental-health": 7,
    "education": 6,
}
PRIORITIES = {"normal": 55, "high": 22, "low": 15, "urgent": 8}
# (transition, old states it may leave, new state), with how often each happens.
TRANSITIONS = {
    ("start", ("new",), "in_progress"): 38,
    ("complete", ("in_progress",), "completed"): 30,
    ("block", ("new", "in_progress"), "blocked"): 12,
    ("unblock", ("blocked",), "in_progress"): 9,
    ("cancel", ("new", "in_progress", "blocked"), "cancelled"): 11,
}
REASONS = [
    "Waiting for client documents",
    "Waiting for client callback",
    "Waiting for client to confirm appointment",
    "Waiting for landlord reply",
    "Waiting for benefits decision",
    "Waiting for housing authority",
    "Awaiting medical report",
    "Awaiting supervisor approval",
    "Interpreter not available",
    "Client unreachable",
    "Client in hospital",
    "Pending court date",
    "Referral partner at capacity",
    "Missing proof of identity",
    "Missing proof of income",
    "Duplicate task",
    "Client moved out of area",
    "Client withdrew",
    "Created in error",
    "Merged into another case",
    "No longer eligible",
    "Handled by another agency",
]
AGENCIES, CLIENTS, ASSIGNEES, PLANS = 250, 120_000, 1_800, 60_000
EVENTS_PER_TASK = 3


def weighted(choices: dict) -> list:
    """The keys repeated by weight: a uniform pick from the list is a weighted pick of a key."""
    return [key for key, weight in choices.items() for _ in range(weight)]


_PICK = "(%(name)s::text[])[1 + floor(random() * cardinality(%(name)s::text[]))::int]"
_NOTE = (
    "CASE floor(random() * 3)::int WHEN 0 THEN ' (ref ' || (100000 + floor(random() * 900000))::int || ')'"
    " WHEN 1 THEN ', until ' || to_char(DATE '2026-01-01' + floor(random() * 400)::int, 'DD Mon')"
    " ELSE ' - spoke to ' || (ARRAY['Ms', 'Mr', 'Dr'])[1 + floor(random() * 3)::int] || ' '"
    " || initcap(substr(md5(random()::text), 1, 3 + floor(random() * 6)::int)) END"
)

HISTORY_SQL = f"""
WITH tasks AS MATERIALIZED (
  SELECT n, gen_random_uuid() AS id, {_PICK % {"name": "%(types)s"}} AS task_type,
         {_PICK % {"name": "%(areas)s"}} AS service_area, {_PICK % {"name": "%(priorities)s"}} AS priority,
         md5('agency' || floor({AGENCIES} * power(random(), 2))::int)::uuid::text AS agency_id,
         1 + floor(random() * {CLIENTS})::int AS client_id,
         CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * {ASSIGNEES})::int END AS assignee_id,
         CASE WHEN random() < 0.4 THEN NULL
              ELSE md5('plan' || floor(random() * {PLANS})::int)::uuid::text END AS action_plan_id,
         random() AS at
  FROM generate_series(0, %(tasks)s - 1) AS n
), events AS (
  SELECT t.*, g, g %% {EVENTS_PER_TASK} + 2 AS sequence,
         (%(transitions)s::text[])[1 + floor(random() * %(weights)s)::int] AS edge
  FROM generate_series(0, %(count)s - 1) AS g JOIN tasks t ON t.n = g / {EVENTS_PER_TASK}
), shaped AS (
  SELECT e.*, split_part(edge, ':', 1) AS transition, split_part(edge, ':', 3) AS new_state,
         (string_to_array(split_part(edge, ':', 2), '|'))[1 + floor(random() *
           cardinality(string_to_array(split_part(edge, ':', 2), '|')))::int] AS old_state,
         {_PICK % {"name": "%(reasons)s"}} || CASE WHEN random() < 0.7 THEN {_NOTE} ELSE '' END AS note
  FROM events e
)
INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at,
    correlation_id, depth, payload, status, attempts, next_attempt_at, last_error, dispatched_at)
SELECT gen_random_uuid(), %(event_type)s, 'task', id, sequence,
       %(start)s + (at * %(days)s + sequence * random() / 10) * interval '1 day', 'history', 0,
       jsonb_build_object(
         'task_id', id::text,
         'title', initcap(replace(task_type, '-', ' ')) || ' for client ' || client_id,
         'task_type', task_type, 'service_area', service_area, 'priority', priority,
         'client_id', client_id, 'agency_id', agency_id, 'assignee_id', assignee_id,
         'action_plan_id', action_plan_id, 'old_state', old_state, 'new_state', new_state,
         'transition', transition,
         'reason', CASE WHEN %(reason_everywhere)s THEN note || ' (note ' || g || ')'
                        WHEN transition IN ('block', 'cancel') THEN note ELSE '' END),
       'dispatched', 1, now(), '', now()
FROM shaped
"""


def task_history_insert(
    count: int,
    *,
    start: datetime,
    days: int = 30,
    event_type: str = "TaskStateChanged",
    reason_everywhere=False,
) -> datetime:
    """``count`` dispatched events (``correlation_id`` ``history``) in ``[start, start + days + 1)``;
    returns the end of that window."""
    from django.db import connection

    edges = [f"{name}:{'|'.join(olds)}:{new}" for (name, olds, new), _ in TRANSITIONS.items()]
    transitions = [
        edge for edge, weight in zip(edges, TRANSITIONS.values(), strict=True) for _ in range(weight)
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")  # the same history every run
        cursor.execute(
            HISTORY_SQL,
            {
                "types": weighted(TASK_TYPES),
                "areas": weighted(SERVICE_AREAS),
                "priorities": weighted(PRIORITIES),
                "reasons": REASONS,
                "transitions": transitions,
                "weights": len(transitions),
                "tasks": -(-count // EVENTS_PER_TASK),
                "count": count,
                "event_type": event_type,
                "start": start,
                "days": days,
                "reason_everywhere": reason_everywhere,
            },
        )
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")
    return start + timedelta(days=days + 1)


def task_history_delete() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM outbox_outboxevent WHERE correlation_id = 'history'")
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")
