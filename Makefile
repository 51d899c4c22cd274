# Entry points for a fresh machine with Python 3.10+ and pip:
#   make demo        installs the exporter in .venv and runs it against the built-in RDS simulator
#   make test        installs the test tools in .venv and runs lint, type checks and every test
#   make test-fast   installs the test tools and runs the unit tests only (no tests marked
#                    integration or slow): about 35 s on two cores
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LISTEN ?= :9877

.PHONY: demo test test-fast lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

demo: install
	$(BIN)/aliyun-rds-backup-exporter --demo --web.listen-address $(LISTEN)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

test-fast: install-test
	$(BIN)/python -m pytest -m "not integration and not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
