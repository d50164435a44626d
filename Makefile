# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run stop manage shell test bench lint format lock audit clean

# --compile-bytecode: uv does not write .pyc files, and with PYTHONDONTWRITEBYTECODE nothing else does, so
# every process start (a worker replacing a killed one, each test's subprocess) spent ~1.5 s compiling.
$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	@touch $(STAMP)

run: $(STAMP)  ## start the whole system: embedded PostgreSQL + Redis, web, worker, beat
	$(PY) scripts/devstack.py run

stop:  ## stop a running `make run` (or what a killed one left): its servers, PostgreSQL and Redis
	$(PY) scripts/devstack.py stop

manage: $(STAMP)  ## a management command against the running stack (or a fresh one): make manage ARGS="createsuperuser"
	$(PY) scripts/devstack.py manage $(ARGS)

shell: $(STAMP)  ## Django's shell against the running stack (or a fresh one)
	$(PY) scripts/devstack.py manage shell $(ARGS)

test: $(STAMP)  ## run the whole suite on real PostgreSQL, Redis and Celery
	$(PY) scripts/devstack.py test $(ARGS)

bench: $(STAMP)  ## run the benchmarks and print figures beside their baselines
	$(PY) scripts/devstack.py bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	DATABASE_URL=postgresql://mypy@localhost/mypy DEBUG=true $(VENV)/bin/mypy .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lock: $(STAMP)  ## re-resolve requirements.lock from pyproject.toml
	$(VENV)/bin/uv pip compile pyproject.toml --extra embedded --extra dev --extra bench --python-version 3.11 -o requirements.lock

# Known vulnerabilities in the pinned set. Without the advisory service (no network) it says it was skipped
# and succeeds; a vulnerability found fails it.
audit: $(STAMP)  ## pip-audit over requirements.lock (skipped, with a message, when the advisory service is unreachable)
	@out=$$($(VENV)/bin/pip-audit -r requirements.lock --no-deps --disable-pip --progress-spinner off 2>&1); rc=$$?; \
	if echo "$$out" | grep -qE "Found [0-9]+ known vulnerabilit"; then echo "$$out"; exit 1; fi; \
	skipped=$$(echo "$$out" | grep -c "could not be audited"); \
	if [ $$rc -ne 0 ]; then echo "$$out" | tail -3; echo "audit skipped: pip-audit could not reach the advisory service (exit $$rc)"; \
	elif [ $$skipped -gt 0 ]; then echo "audit: no known vulnerabilities among the packages checked; $$skipped package(s) skipped (advisory service unreachable for them; run again with network)"; \
	else echo "audit: no known vulnerabilities in requirements.lock"; fi

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
