# make demo: build the demo study and serve the survey; make test: run the whole test suite (what CI runs);
# make test-fast: only the tests not marked slow (no real study build, browser, server, PostgreSQL or Ray;
# tests/conftest.py sets the mark), for a quick check while working;
# make lint: ruff (lint and format check), mypy and the import contracts (import-linter), as CI runs them.
# Each creates .venv and installs the project into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist: one worker per core (at most 4); the tests of a module that share its servers stay on
# one worker (tests/conftest.py: xdist_group), the run's builds are shared by the workers (once_per_run).
PARALLEL ?= -n auto --maxprocesses=4 --dist loadgroup

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lookalike demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL)

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .lookalike
