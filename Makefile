# Three commands on a fresh Debian 12 machine: `make run`, `make demo` and `make test`.
# Everything they need (venv, Python packages, Debian packages, npm tools, services) is
# installed and started from here; as non-root, missing Debian packages are named instead.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2
CODE   := platform/tuanbox edge firmware_sim telemetry traceability $(wildcard bench/*.py)

.PHONY: help venv deps services run demo test lint typecheck pytest drills compose-check bench clean services-down

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed  ## Create/refresh the virtual environment with the test extras

deps: venv  ## Install missing Debian packages (as root) and the pinned npm tools
	$(BIN)/tuanbox services install

services: deps  ## Start PostgreSQL (and its streaming replica), Redis, Mosquitto, InfluxDB and anvil; print their status
	$(BIN)/tuanbox services up

services-down:  ## Stop the services the project started (InfluxDB, anvil, the PostgreSQL replica)
	$(BIN)/tuanbox services down

run: services  ## The whole platform locally with two simulated lockers and a demo shop (Ctrl-C stops it)
	$(BIN)/tuanbox run

demo: services  ## The whole flow end to end on embedded defaults
	$(BIN)/tuanbox demo

lint: venv  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv  ## mypy over the code
	$(BIN)/mypy $(CODE)

compose-check: deps  ## Validate docker-compose.yml (no engine runs here)
	$(BIN)/pytest -q tests/platform/foundation/test_compose.py

pytest: services  ## The test suite against the real services
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

# The drills live under tests/, so `make pytest` (and with it `make test` and CI) runs them too,
# with InfluxDB down for 30 s; `make drills` keeps it down for minutes (DRILL_INFLUX_OUTAGE_S).
DRILL_INFLUX_OUTAGE_S ?= 180
drills: services  ## Fault drills: break a service mid-workload, print what broke and what held
	DRILL_INFLUX_OUTAGE_S=$(DRILL_INFLUX_OUTAGE_S) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile tests/drills

test: services lint typecheck pytest  ## Everything CI runs

bench: services  ## Run every benchmark; each prints its figures against a same-run baseline
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: services-down  ## Remove the venv, local service data and caches
	rm -rf $(VENV) .services var .mypy_cache .ruff_cache node_modules
