"""Retry delays with jitter, one rule for every retry: dispatch's backoff and the webhook retry schedule.

Both scale their nominal delay by ``jittered``; only the nominal delays and the spread differ.
"""

import random
from collections.abc import Sequence


def jittered(seconds: float, *, low: float, high: float) -> float:
    """``seconds`` scaled by a random factor in [``low``, ``high``]: retries of work that failed together
    spread out instead of arriving at once."""
    return float(seconds) * random.uniform(low, high)


def backoff_seconds(*, attempts: int, base: float, cap: float) -> float:
    """The wait before the next try after ``attempts`` failed ones (the dispatcher's).

    ``base * 2**(attempts-1)`` capped at ``cap``, then scaled by a random factor in [0.5, 1.0] ("equal
    jitter"): retries of work that failed together spread out, yet each delay stays within a factor of
    two of the schedule, so the schedule is still predictable.
    """
    exponent = min(max(attempts, 1) - 1, 62)
    return jittered(min(float(cap), float(base) * (2**exponent)), low=0.5, high=1.0)


def schedule_seconds(*, attempts: int, schedule: Sequence[float], spread: float = 0.1) -> float | None:
    """The wait before the next try after ``attempts`` failed ones, from an explicit ``schedule`` (one
    entry per retry, as webhook deliveries use), ±``spread`` jitter; ``None`` once the schedule is spent.

    The spread is narrower than the backoff's: each entry is a deliberate wait (10 h must stay about
    10 h), and the entries themselves already grow apart.
    """
    if not 1 <= attempts <= len(schedule):
        return None
    return jittered(schedule[attempts - 1], low=1 - spread, high=1 + spread)
