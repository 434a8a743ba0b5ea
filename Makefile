# Frontline: `make demo` and `make test` are all a fresh machine needs (Python 3.11+, make).
# Two locks from pyproject.toml (`make lock`): requirements.lock, what the product runs on (all `make demo`
# installs), and requirements-dev.lock, the same pins plus the test and lint tools (`make test`, `make lint`).
# Installs go through uv (pinned, from PyPI into the venv); the stamps make a re-run instant.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
UV     := $(BIN)/uv
UV_STAMP  := $(VENV)/.uv-$(UV_VERSION)
STAMP     := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)
UV_INSTALL := $(UV) pip install --quiet --python $(BIN)/python

.PHONY: install install-dev demo test test-fast lint format bench lock migration migration-new chromium axe postgres dovecot clean

$(UV_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@rm -f $(VENV)/.uv-* && touch $@

# the runtime: what `make demo` needs, and nothing else. Compiled to bytecode at install (uv does not by
# default, and where PYTHONDONTWRITEBYTECODE is set nothing is ever cached): otherwise every command
# compiles ~1,000 modules again, ~1.9 s of a 10k `frontline plan`'s 3.7 s.
$(STAMP): requirements.lock pyproject.toml $(UV_STAMP)
	$(UV_INSTALL) --compile-bytecode -r requirements.lock
	$(UV_INSTALL) --no-deps -e .
	@$(BIN)/python -m compileall -q -j0 frontline flows models >/dev/null
	@rm -f $(VENV)/.installed-[0-9]* && touch $@

# the runtime plus the test and lint tools (same pins)
$(DEV_STAMP): requirements-dev.lock $(STAMP)
	$(UV_INSTALL) -r requirements-dev.lock
	@rm -f $(VENV)/.installed-dev-* && touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: install
	$(BIN)/frontline demo

# Browser tests use Debian's Chromium (never a downloaded browser); PostgreSQL tests the local server.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and apt-get unavailable; browser tests will be skipped"; fi; }

# RSVP reply tests read a real IMAP mailbox: Debian's Dovecot, started by the tests on loopback with a
# temporary configuration (the package's own service is not used).
dovecot:
	@command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null) \
	      || echo "warning: could not install dovecot-imapd; the RSVP reply tests will be skipped"; \
	  else echo "warning: dovecot missing and apt-get unavailable; the RSVP reply tests will be skipped"; fi; }

# axe-core from npm (package.json, package-lock.json): the browser tests inject it into every console page.
AXE := node_modules/axe-core/axe.min.js
axe: $(AXE)

$(AXE): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) \
	      || echo "warning: could not install npm; the accessibility checks will be skipped"; \
	  else echo "warning: npm missing and apt-get unavailable; the accessibility checks will be skipped"; fi; }
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $@; fi

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  command -v pg_ctlcluster >/dev/null 2>&1 && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start 2>/dev/null; true; }

test: install-dev chromium axe postgres dovecot
	$(BIN)/python -m pytest

# ruff (lint + format check) and mypy: .ci/run runs this before the tests.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-fast: install-dev
	$(BIN)/python -m pytest -m "not integration and not browser"

bench: install
	$(BIN)/python bench/plan.py

# Both locks from pyproject.toml, runtime first; the dev lock is resolved under the runtime pins
# (-c), so the two agree on every shared package. Pins already in a lock are kept unless pyproject.toml
# rules them out (delete a lock file to re-resolve it from scratch).
LOCK_ARGS := --python-version 3.11 --quiet --custom-compile-command "make lock"
lock: $(UV_STAMP)
	$(UV) pip compile pyproject.toml $(LOCK_ARGS) -o requirements.lock
	$(UV) pip compile pyproject.toml --extra dev -c requirements.lock $(LOCK_ARGS) -o requirements-dev.lock

migration: install
	$(BIN)/python -m models.migrations.regenerate_initial

# the next numbered migration from the models: make migration-new MESSAGE="what changed"
migration-new: install
	$(BIN)/python -m models.migrations.new_revision "$(MESSAGE)"

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache node_modules
