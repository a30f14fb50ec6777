# Shop: the two commands are `make run` and `make test`; the rest are the production processes.
SHELL := /bin/bash
# The interpreter the venv is made from. Debian's /usr/bin/python3.11 is a profile-guided, link-time
# optimised build, as the Docker image's python:3.11-slim is; a plain source build (pyenv's default,
# this machine's `python3`) runs the same code with about a fifth more CPU (docs/performance.md).
# Taken when it can make a venv (python3.11-venv); PYTHON=... chooses another.
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null && echo /usr/bin/python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
CONTEXT_QUEUES = $(shell $(PYTHON) -m shop.contexts --queues)

.PHONY: run test venv services prometheus-tools browser migrate seed web worker beat lint format bench bench-events bench-reads chaos schema clean

export INTERPRETER := import os, sys; print(os.path.realpath(getattr(sys, sys.argv[1])))
$(VENV)/.installed: requirements.txt
	@# a venv made from another interpreter than PYTHON is made again (checked whenever requirements.txt changed)
	@test ! -x $(PY) || [ "$$($(PY) -c "$$INTERPRETER" _base_executable)" = "$$($(PYTHON) -c "$$INTERPRETER" executable)" ] \
		|| { echo "$(VENV) was made from another interpreter: making it again from $(PYTHON)"; rm -rf $(VENV); }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

services:
	bash scripts/services.sh

## Debian's prometheus package (prometheus + promtool) for the alert-rule and dashboard tests; only when missing
prometheus-tools:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus; }

## Debian's chromium + chromium-driver for the staff browser tests (tests/browser); only when missing.
## Nothing downloads a browser at test time; CHROMIUM_BIN/CHROMEDRIVER_BIN may point at another Chrome.
export CHROMIUM_BIN ?= /usr/bin/chromium
export CHROMEDRIVER_BIN ?= /usr/bin/chromedriver
browser:
	@[ -x "$(CHROMIUM_BIN)" ] && [ -x "$(CHROMEDRIVER_BIN)" ] || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

migrate: venv
	$(PY) manage.py migrate_all

seed: migrate
	$(PY) manage.py seed_demo

## make run: set up and serve on http://127.0.0.1:$(PORT) (embedded SQLite + in-process work without env)
run: seed
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

## make test: lint, architecture, migrations and the whole suite (staff flows in Chromium included) against PostgreSQL + Redis
test: venv services prometheus-tools browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

web: migrate
	$(VENV)/bin/gunicorn config.wsgi:application -c config/gunicorn.py --bind 127.0.0.1:$(PORT) --workers $${WEB_CONCURRENCY:-2} \
		--access-logfile - --timeout 30 --graceful-timeout 20 --no-control-socket

worker: venv
	$(VENV)/bin/celery -A config worker -Q $(CONTEXT_QUEUES) --concurrency $${WORKER_CONCURRENCY:-4} --loglevel INFO

beat: venv
	$(VENV)/bin/celery -A config beat --loglevel INFO --schedule var/celerybeat-schedule

schema: venv
	$(PY) manage.py spectacular --file docs/openapi.yaml --validate

bench: venv services
	$(PY) bench/checkout.py $(BENCH_ARGS)

## make chaos: the fault campaign (10,000 orders at 70 % of the capacity BENCHMARKS.md records, by default; CHAOS_ARGS="--orders 2000") into RELIABILITY.md
chaos: venv services
	$(PY) bench/chaos.py $(CHAOS_ARGS)

bench-events: venv services
	$(PY) bench/events.py

## make bench-reads: cached reads vs a bare view, and list and admin reads at 10 k / 100 k / 1 M orders (about 15 min;
## BENCH_ARGS="--hold-quiet NAME" holds /work/QUIET for the run)
bench-reads: venv services
	@command -v ab >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq apache2-utils; }
	$(PY) bench/reads.py $(BENCH_ARGS)

clean:
	rm -rf var/*.sqlite3 .pytest_cache .ruff_cache
