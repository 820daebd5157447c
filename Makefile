# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# DATABASE_URL as the bot reads it (the environment's, else the last one in .env): when it is
# PostgreSQL, `make run` and `make migrate` install the `postgres` extra (its driver) too.
DB_URL := $(strip $(subst ",,$(subst ',,$(or $(DATABASE_URL),$(shell \
	sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?DATABASE_URL[[:space:]]*=[[:space:]]*//p' \
	.env 2>/dev/null | tail -n 1)))))
EXTRAS := $(if $(filter postgresql%,$(DB_URL)),[postgres])
# The stamps make re-installs happen only when pyproject.toml (or the extra needed) changes.
STAMP := $(VENV)/.installed$(if $(EXTRAS),-postgres)
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run migrate test lint bench bench-usage

install: $(STAMP)

install-dev: $(DEV_STAMP)

$(PY):
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)

# pip stays quiet (its errors still show); a line before and after says what is going on.
$(STAMP): pyproject.toml | $(PY)
	@echo "Installing dependencies$(if $(EXTRAS), with the PostgreSQL driver,) into $(VENV) (about a minute the first time)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.$(EXTRAS)'
	@touch $@ $(VENV)/.installed
	@echo "Dependencies installed."

# The dev extra has the PostgreSQL driver too (the tests run on PostgreSQL).
$(DEV_STAMP): pyproject.toml | $(PY)
	@echo "Installing dependencies and dev tools into $(VENV) (about a minute the first time)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(VENV)/.installed $(VENV)/.installed-postgres
	@echo "Dependencies and dev tools installed."

# `python -m bot` applies migrations itself before it starts serving.
run: install
	$(PY) -m bot

migrate: install
	$(PY) -m bot migrate

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest
	@tmp=$$(mktemp -d) && export DATABASE_URL="sqlite+aiosqlite:///$$tmp/check.db" && \
	  $(VENV)/bin/alembic -c alembic.ini upgrade head >/dev/null 2>&1 && \
	  $(VENV)/bin/alembic -c alembic.ini check; rc=$$?; rm -rf "$$tmp"; exit $$rc

bench: install-dev
	PYTHONPATH=. $(PY) bench/reply_cost.py
	PYTHONPATH=. $(PY) bench/slack_scheduler.py
	PYTHONPATH=. $(PY) bench/startup.py
	@echo "30, 100 and 300 mentions at once, one process and two replicas (about 20 minutes):"
	PYTHONPATH=. $(PY) bench/crowd.py

bench-usage: install-dev
	PYTHONPATH=. $(PY) bench/usage_report.py
