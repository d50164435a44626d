"""The idempotency app's periodic task, gathered into beat's schedule by ``polaris.celery``."""


def beat_schedule() -> dict[str, dict]:
    # Idempotency-Key responses are kept IDEMPOTENCY_KEY_TTL_HOURS; drop older ones hourly.
    return {
        "idempotency-keys-purge": {
            "task": "idempotency.keys_purge",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }
