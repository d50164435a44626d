"""Routing's beat entry (settings only): the hourly recount of the workers' load counters."""


def beat_schedule() -> dict[str, dict]:
    return {
        # Safety net: counters change with every write in its transaction; this repairs any row written
        # around the services (imports, a shell) and logs each repair.
        "routing-load-repair": {
            "task": "routing.load_repair",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }
