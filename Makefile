# Reverie: `make up` runs the whole service on embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: up test install install-dev chromium lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

up: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seedservice
	$(BIN)/python manage.py runservice

# Chromium for the browser tests comes from Debian's packages, never from a download by a tool.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

test: install-dev chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (lint and format) over the tree; mypy over webapp/ and streaming/ (pyproject.toml).
# mypy's Django plugin imports the settings: a REDIS_URL (never connected to) keeps that import
# from starting the embedded Redis, which nothing would stop.
# SKIP_FORMAT_CHECK=1 leaves out `ruff format --check` until the tree's one formatting commit.
LINT_PATHS := webapp inference streaming tests bench
lint: install-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(if $(SKIP_FORMAT_CHECK),,$(BIN)/ruff format --check $(LINT_PATHS))
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(BIN)/mypy

bench: install-dev
	$(BIN)/python bench/dispatch_latency.py

clean:
	rm -rf $(VENV) var
