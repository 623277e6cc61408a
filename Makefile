# Giao Ban — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test check typecheck system-deps messages bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

## make run: set up and serve the demo on http://127.0.0.1:$${GIAOBAN_PORT:-8000}
run: $(VENV)/.installed
	GIAOBAN_DEMO=1 $(PY) -m server serve

## make test: install what the suite needs (PostgreSQL included) and run all of it
test: $(VENV)/.installed system-deps typecheck
	$(PY) -m pytest

typecheck: $(VENV)/.installed
	$(VENV)/bin/ruff check server media tests bench migrations
	$(VENV)/bin/mypy

# Debian's PostgreSQL server (the migration and database tests start it), Debian's dovecot
# (the IMAP server the reply reader's tests start), Debian's chromium (the browser tests drive
# it headless with a fake camera and microphone), Debian's janus (the capacity benchmark's test
# compares our SFU with its VideoRoom) and Node.js with
# Mozilla's ical.js (Thunderbird's parser: the calendar tests read our output with it).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing Debian's postgresql for the test suite"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi
	@if ! test -x /usr/sbin/dovecot; then \
	  echo "installing Debian's dovecot-imapd for the mailbox tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null; \
	fi
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing Debian's nodejs and npm for the calendar tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	fi
	@if ! test -x /usr/bin/chromium; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	fi
	@if ! test -x /usr/bin/janus || ! command -v gcc >/dev/null; then \
	  echo "installing Debian's janus (and gcc for its loopback shim) for the capacity benchmark's test"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends janus gcc libc6-dev >/dev/null; \
	fi
	cd tests/support/icaljs && npm ci --no-audit --no-fund --loglevel=error

## make messages: extract translatable strings and update both catalogues
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F web/babel.cfg -k N_ -k t --no-location --sort-output \
	  --project giaoban --version 0 -o web/translations/messages.pot .
	$(VENV)/bin/pybabel update -i web/translations/messages.pot -d web/translations --no-fuzzy-matching --ignore-obsolete

## make bench: the capacity benchmark, our SFU and Janus side by side (issue 8), e.g.
##   make bench N="10 30 60 120 200" SECONDS=20 [SFU=both|giaoban|janus] [PROCESSES=2] [BENCH_ARGS="--plot"]
## writes bench/results/capacity.json; the other benchmarks: see bench/README.md
N ?= 10 30 60 120 200
SECONDS ?= 20
SFU ?= both
PROCESSES ?=

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	@if [ "$(SFU)" != giaoban ] && { ! test -x /usr/bin/janus || ! command -v gcc >/dev/null; }; then \
	  echo "installing Debian's janus (and gcc for its loopback shim) for the benchmark"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends janus gcc libc6-dev >/dev/null; \
	fi
	$(PY) -m bench.capacity --receivers $(N) --seconds $(SECONDS) --sfu $(SFU) $(if $(PROCESSES),--processes $(PROCESSES)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
