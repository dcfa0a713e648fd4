# Failover Dashboard. Quick start: `make run` (the demo) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast migrate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(MANAGE) migrate --noinput
	$(MANAGE) migrate --database simdirac --noinput

run: install
	$(PY) -m dashboard.run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf var/ .pytest_cache
