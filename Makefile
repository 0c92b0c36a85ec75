# quietline — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make run` is a local, single-machine install: development settings (SMS codes land in the
# development outbox, shown by `quietline sms outbox`) unless the caller says otherwise.
RUN_ENV ?= development
DEBIAN_PACKAGES := chromium fonts-wqy-microhei
# The HTTP benchmarks drive the server with wrk (they fall back to Python threads, a weaker load, without it).
BENCH_PACKAGES := wrk

.PHONY: help install system-packages run serve test lint typecheck contracts unit integration e2e bench clean

help: ## List the targets with what each does
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

system-packages: ## Install the Debian packages the tests need (Chromium for the browser tests)
	@missing=""; for p in $(DEBIAN_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml setup.py src/quietline/screening/_qtable.c
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install quietline with its dev dependencies and Debian packages

run: install ## Migrate the embedded SQLite database, load demo data once, serve portal + API on :8000
	QUIETLINE_ENV=$${QUIETLINE_ENV:-$(RUN_ENV)} $(BIN)/quietline db upgrade
	QUIETLINE_ENV=$${QUIETLINE_ENV:-$(RUN_ENV)} $(BIN)/quietline demo load
	QUIETLINE_ENV=$${QUIETLINE_ENV:-$(RUN_ENV)} $(BIN)/quietline serve --host $(HOST) --port $(PORT)

lint: install ## ruff (lint and format check)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install ## mypy --strict on src/
	$(BIN)/mypy

contracts: install ## import-linter layer contracts
	$(BIN)/lint-imports

test: install ## Lint, type-check, check layer contracts and run every test (SQLite; PostgreSQL too when reachable, always under CI)
	@$(MAKE) --no-print-directory lint typecheck contracts
	$(BIN)/python -m pytest tests

unit: install ## Only the fast unit tests
	$(BIN)/python -m pytest tests/unit -q

bench: install ## Run every benchmark (JSON on stdout, with same-run baselines)
	@$(MAKE) --no-print-directory system-packages EXTRA_PACKAGES="$(BENCH_PACKAGES)"
	@for b in benchmarks/bench_*.py; do echo "== $$b" >&2; $(BIN)/python $$b || exit 1; done

clean: ## Remove the virtualenv, caches and the local database
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
