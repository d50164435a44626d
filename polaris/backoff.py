"""Exponential backoff with jitter: the one retry schedule that dispatch and webhook deliveries share."""

import random


def backoff_seconds(*, attempts: int, base: float, cap: float) -> float:
    """The wait before the next try after ``attempts`` failed ones.

    ``base * 2**(attempts-1)`` capped at ``cap``, then scaled by a random factor in [0.5, 1.0] ("equal
    jitter"): retries of work that failed together spread out, yet each delay stays within a factor of
    two of the schedule, so the schedule is still predictable.
    """
    exponent = min(max(attempts, 1) - 1, 62)
    return min(float(cap), float(base) * (2**exponent)) * random.uniform(0.5, 1.0)
