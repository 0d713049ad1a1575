# memdb — `make run` starts a three-zone cluster on localhost; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install proto run test test-deps sim-long clean

install: $(STAMP) proto

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

# Generated code is built here, never hand-edited (tests/unit/test_generated.py checks it is current).
proto: $(STAMP)
	$(PY) -m txlog.tools.genproto

# Debian's redis-server is the oracle of the differential tests; redis-tools gives redis-cli/redis-benchmark.
test-deps:
	@command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools; }

run: install
	$(VENV)/bin/memdb cluster up

test: install test-deps
	$(PY) -m pytest -q

# 100,000 seeded Raft simulation schedules (the default suite runs 2,000).
sim-long: install
	MEMDB_SIM_SCHEDULES=100000 $(PY) -m pytest -q tests/sim -m 'not slow or slow'

clean:
	rm -rf $(VENV) memdb-data
