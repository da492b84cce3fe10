# Everyday commands. The two in the README's quick start are `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck migrate e2e bench install dev clean

$(BIN)/finops-dashboard: setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

install: $(BIN)/finops-dashboard  ## the app and its dependencies in .venv

dev: install  ## plus the test and lint tools
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install  ## start the embedded default on http://127.0.0.1:8050/
	$(BIN)/finops-dashboard demo

test:  ## set up everything and run the whole suite (unit, integration, e2e) on SQLite and PostgreSQL
	bash scripts/test-all

lint: dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: dev
	$(BIN)/mypy

migrate: install  ## apply migrations to DATABASE_URL
	$(BIN)/finops-dashboard db upgrade

e2e: dev
	$(BIN)/pytest tests/e2e

bench: dev
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
