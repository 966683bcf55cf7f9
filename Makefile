# Two commands for a fresh clone: `make demo` and `make test`. Both create .venv and
# install workhorse with its extras the first time (and again when pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## a live demo on a fresh SQLite file
	$(VENV)/bin/workhorse demo

test: lint typecheck  ## everything CI runs: lint, types, the whole test suite
	$(PY) -m pytest

# bandit checks tests, benchmarks and examples too, with reviewed exceptions: they start
# processes (workers, servers) from argument lists without a shell (B404, B603, B606),
# and tests pass made-up lease tokens and secrets (B106). The peers benchmark's virtualenvs
# (benchmarks/peers/.venv*) hold other projects' code and are left out.
lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m bandit -c pyproject.toml -r src -q
	$(PY) -m bandit -c pyproject.toml -r tests benchmarks examples -q -s B106,B404,B603,B606 -x '*/.venv*'

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)  ## the fast part of the suite
	$(PY) -m pytest -m "not slow and not browser"

bench: $(STAMP)  ## benchmark numbers for SQLite and PostgreSQL
	$(PY) benchmarks/bench.py --backend all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
