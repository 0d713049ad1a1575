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

# Randomized kill -9 cycles under load on one cluster (bench/chaos.py): CHAOS_CYCLES=20 CHAOS_SEED=7 make chaos
CHAOS_CYCLES ?= 200
.PHONY: chaos
chaos: install
	$(PY) -m bench.chaos --cycles $(CHAOS_CYCLES) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

# Docker (deploy/): the same three-zone cluster in containers, endpoint on 127.0.0.1:$(MEMDB_PORT).
MEMDB_PORT ?= 7000
COMPOSE ?= $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose) -p memdb -f deploy/docker-compose.yml
.PHONY: image compose-up compose-down

image: install
	@bash deploy/ensure-docker.sh >/dev/null
	PYTHON=$(PY) bash deploy/build-image.sh

compose-up: image
	MEMDB_PORT=$(MEMDB_PORT) $(COMPOSE) up -d
	$(PY) deploy/wait_ready.py --port $(MEMDB_PORT)

# Keeps the txlog volumes (the next compose-up restarts the same cluster); `make compose-down DOWN_ARGS=-v` wipes them.
compose-down:
	$(COMPOSE) down $(DOWN_ARGS)

# memdb side by side with redis-server (+replica+WAIT, AOF always, no persistence) and a 3-member etcd
# (bench/run.py; installs redis/etcd from Debian if missing): `make bench BENCH_ARGS=--quick`
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# memdb's RSS per key / hash field / zset member vs redis-server's (bench/memory.py): 1M strings, 100k hashes of
# 10 fields, one zset of 1M members; `make bench-memory BENCH_MEMORY_ARGS='--scale 0.1'` for a quick check
BENCH_MEMORY_ARGS ?=
.PHONY: bench-memory
bench-memory: $(STAMP)
	$(PY) -m bench.memory $(BENCH_MEMORY_ARGS)
