# Reverie: `make up` runs the whole service on embedded defaults; `make test` runs every test.
# Python 3.11 exactly (Django 5.2 LTS and the pinned torch wheel): python3.11 when there is
# one, else python3 if that is 3.11; anything else stops with what to install.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: up test install install-dev test-tools chromium lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "Reverie needs Python 3.11 (found: $$($(PYTHON) --version 2>&1 || echo none))."; \
	  echo "Install python3.11 (or pyenv install 3.11), or run make PYTHON=/path/to/python3.11"; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

# TORCH_INDEX=https://download.pytorch.org/whl/cpu takes torch's CPU build (about 200 MB)
# instead of PyPI's CUDA one (several GB) on a laptop without an NVIDIA GPU.
TORCH_INDEX ?=
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(if $(TORCH_INDEX),$(BIN)/pip install --quiet --disable-pip-version-check \
	  torch==2.13.0 --index-url $(TORCH_INDEX))
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

# Tools the tests drive, from Debian's packages, never from a download by a tool: Chromium
# (browser tests), coturn (TURN relay tests), haproxy (the fleet harness's load balancer) and
# docker-compose (parses deploy/docker's files).
TEST_TOOLS := chromium:chromium turnserver:coturn haproxy:haproxy docker-compose:docker-compose
chromium: test-tools
test-tools:
	@missing=$$(for tool in $(TEST_TOOLS); do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || echo $${tool#*:}; done); \
	[ -z "$$missing" ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; }

test: install-dev test-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (lint and format) over the tree; mypy over webapp/ and streaming/ (pyproject.toml).
# SKIP_FORMAT_CHECK=1 leaves out `ruff format --check` until the tree's one formatting commit.
LINT_PATHS := webapp inference streaming tests bench
lint: install-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(if $(SKIP_FORMAT_CHECK),,$(BIN)/ruff format --check $(LINT_PATHS))
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python bench/dispatch_latency.py

clean:
	rm -rf $(VENV) var
