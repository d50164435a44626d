"""The accounts app's periodic task, gathered into beat's schedule by ``polaris.celery``."""


def beat_schedule() -> dict[str, dict]:
    # Every login and refresh records its refresh token (rotation, logout); expired ones go hourly.
    return {
        "expired-tokens-purge": {
            "task": "accounts.expired_tokens_purge",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }
