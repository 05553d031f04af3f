# make demo / make test work on a fresh Debian machine: missing pieces are installed first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := bubblewrap git

.PHONY: install system-deps demo test lint typecheck bench clean

# Debian packages the sandbox and the suite need (bubblewrap for the default sandbox).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@scripts/setup-docker.sh  # a Docker engine for the docker sandbox (docker.io, dockerd)

# bench extras too: the suite smoke-tests every benchmark against its baseline.
$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

install: system-deps $(BIN)/.installed

demo: install
	$(BIN)/corral demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	@scripts/ensure-postgres.sh
	$(BIN)/pytest -q

# Every benchmark writes bench/results/<name>.json; a failing one is reported, not fatal.
# The millisecond ones first, and a pause between benchmarks: what one leaves running for
# a few seconds (Ray's processes, a fleet's teardown) must not be measured by the next.
BENCHES := agent_step sandbox_start fleet store_throughput scheduler gateway_ratelimit cve_scan crash_recovery
bench: install
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py $(BENCH_ARGS) >/dev/null || echo "bench/$$b.py FAILED"; sleep 10; done
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .corral .mypy_cache .ruff_cache .pytest_cache
