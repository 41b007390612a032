# Floorview. `make demo` and `make test` each install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

# A Python >= 3.12: $(PYTHON) if given, else the version pinned in .python-version (via pyenv), else the first one found.
PYTHON ?= $(shell for c in \
	"$$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$$(cat .python-version 2>/dev/null)/bin/python" \
	python3.13 python3.12 python3.14 python3; do \
	  p=$$(command -v "$$c" 2>/dev/null) || continue; \
	  "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; \
	done)

.PHONY: help install install-dev browser demo test test-fast lint format bench soak-cxone services clean

help:
	@echo "make demo     install and run the one-process demo (SQLite, in-memory layer, simulator)"
	@echo "make test     install everything (incl. Chromium) and run the whole test suite"
	@echo "make lint     ruff check and format check"
	@echo "make format   ruff format and fix"
	@echo "make bench    run the benchmarks (prints figures)"
	@echo "make soak-cxone  soak the demo's CXone board for 30 min through a 40 s outage (prints figures)"

$(VENV)/.python-ok:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "Floorview needs Python 3.12 or newer (Django 6). Install one, or run: make PYTHON=/path/to/python3.12 ..." >&2; exit 1; fi
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 12))' || { \
	  echo "$(PYTHON) is older than 3.12; Django 6 needs 3.12+. Set PYTHON=/path/to/python3.12." >&2; exit 1; }
	"$(PYTHON)" -m venv $(VENV)
	@touch $@

$(VENV)/.installed: requirements.txt $(VENV)/.python-ok
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev browser

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; \
	fi

demo: install
	$(PY) manage.py demo $(DEMO_ARGS)

services:
	@bash .ci/services

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install-dev
	$(PY) bench/run.py $(BENCH_ARGS)

# Runs the demo alone (no browser): the runtime requirements are enough.
soak-cxone: install
	$(PY) bench/cxone_outage.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
