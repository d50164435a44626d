"""Run every benchmark in turn (`make bench`, or `make bench ARGS=--quick`).

Each benchmark prints its figure beside a baseline measured in the same run, and the ratio.
Select some with their names: `make bench ARGS="foundation dispatch --quick"`. The whole-system soak
(10 minutes) runs only when named: `make bench ARGS=soak` (`ARGS="soak --minutes 3"`, `ARGS="soak --quick"`),
and so does the several-hosts scenario (root, network namespaces): `make bench ARGS=multihost`.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "foundation",
    "dispatch",
    "recovery",
    "api",
    "http_peer",
    "longpoll",
    "casework",
    "automation",
    "timers",
    "integrations",
    "sla",
    "sla_repair",
    "ops",
    "peers",
    "privacy",
    "careplans",
    "search",
    "routing",
    "checklists",
    "reports",
]
ON_REQUEST = ["soak", "multihost"]  # multihost: root, ip netns and haproxy


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = ORDER + ON_REQUEST
    chosen = [name for name in argv if name in known] or ORDER
    passthrough = [arg for arg in argv if arg not in known]
    failures = 0
    for name in chosen:
        script = HERE / f"{name}_bench.py"
        if not script.exists():
            print(f"== {name}: not present, skipped ==")
            continue
        print(f"\n#### bench/{script.name} {' '.join(passthrough)}", flush=True)
        result = subprocess.run([sys.executable, str(script), *passthrough], cwd=HERE.parent)
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
