# Two commands on a fresh machine with only Python >= 3.11 and make:
#   make run    install, start PostgreSQL (embedded unless DATABASE_URL is set), migrate,
#               seed DEMO_USERS contacts if empty, serve on http://127.0.0.1:$(PORT)
#   make test   install and run the whole test suite against real PostgreSQL
#   REPLICAS=1 make run   the same with an embedded primary and one streaming replica
PYTHON ?= python3
PORT ?= 8000
DEMO_USERS ?= 100000
TOOLS := .data/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint bench stop browser fuzz

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

run: install
	$(PY) manage.py serve --port $(PORT) --demo-users $(DEMO_USERS)

test: install browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: install
	$(PY) manage.py bench --users 3000000

# Schemathesis at length (tests/test_schemathesis.py; CI runs a short version): every check
# and phase, over 10,000 generated requests against a live gunicorn; prints its summary.
FUZZ_SEED ?= 1
fuzz: install
	SCHEMATHESIS_SEED=$(FUZZ_SEED) SCHEMATHESIS_MAX_EXAMPLES=40 SCHEMATHESIS_MIN_CASES=10000 \
		$(PY) -m pytest -s -p no:cacheprovider tests/test_schemathesis.py

# Debian's chromium for the browser tests (Playwright never downloads its own browser).
browser:
	@command -v chromium >/dev/null || bash .ci/install-chromium

stop: install
	$(PY) -m config.embedded_pg stop
	$(PY) -m config.replication stop
