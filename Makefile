# Failover Dashboard. Quick start: `make run` (the demo) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed

.PHONY: install system-deps run lint test test-dirac migrate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	scripts/system-deps.sh

migrate: install
	$(MANAGE) migrate --noinput

run: install
	$(PY) -m dashboard.run

# ruff (pyproject.toml: pyflakes, pycodestyle, import order; line length 120), installed by the test extra.
lint: install
	$(PY) -m ruff check .

# Everything but the DIRAC-marked tests runs in the product's environment; those run in DIRAC's
# own environment when tests/dirac/services.sh has started real DIRAC services.
test: install system-deps lint
	$(PY) -m pytest -m "not dirac" $(PYTEST_ARGS)
	scripts/test-dirac.sh

test-dirac:
	tests/dirac/services.sh start
	scripts/test-dirac.sh

bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf var/ .pytest_cache
