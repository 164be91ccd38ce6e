# PayLinks: `make run` for the demo, `make test` for the suite. Both work on a fresh machine.
# The first Python 3.11-3.14 on the PATH: requires-python in pyproject.toml.
PYTHON ?= $(shell for p in python3 python3.14 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))' \
	&& { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install lock run test quick lint browser gettext axe messages clean

# Every package, transitive ones included, comes from requirements.lock with its hashes, and the
# virtualenv is rebuilt when the lock or pyproject.toml changes. Only python3 and pip are needed.
LOCK := requirements.lock
$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -n "$(PYTHON)" || { echo "PayLinks needs Python 3.11, 3.12, 3.13 or 3.14 as python3" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	touch $@

# A pin in pyproject.toml that the lock lacks means the lock wasn't written again: `make lock`.
install: $(VENV)/.installed
	@$(PY) -c 'import re, tomllib; \
		name = lambda req: re.sub(r"[-_.]+", "-", re.sub(r"\[.*?\]", "", req).lower()); \
		locked = {name(line.split(" ")[0].strip()) for line in open("$(LOCK)")}; \
		project = tomllib.load(open("pyproject.toml", "rb")); \
		pins = project["project"]["dependencies"] + project["dependency-groups"]["dev"]; \
		stale = [pin for pin in pins if name(pin) not in locked]; \
		stale and exit("$(LOCK) lacks " + ", ".join(stale) + " of pyproject.toml: run make lock")'

# Writes requirements.lock again from pyproject.toml (dependencies and the dev group): one lock
# for Python 3.11 to 3.14 on any system, with hashes. Pins already in the lock are kept where
# they still fit; LOCK_FLAGS=--upgrade takes the newest of every package instead. Commit the lock.
LOCK_FLAGS ?=
lock: $(VENV)/.installed
	$(VENV)/bin/uv pip compile pyproject.toml --group dev --universal --generate-hashes \
		--custom-compile-command "make lock" --quiet $(LOCK_FLAGS) -o $(LOCK)

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium >/dev/null; }; \
		else echo "Install Chromium first: sudo apt-get install -y chromium" >&2; exit 1; fi; }

# gettext's tools, for `manage.py makemessages` and the test that the catalogs are complete.
gettext:
	@command -v msgmerge >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q gettext >/dev/null || { apt-get update -q && apt-get install -y -q gettext >/dev/null; }; \
		else echo "Install gettext first: sudo apt-get install -y gettext" >&2; exit 1; fi; }

# axe-core (npm), for the browser tests' accessibility check; kept beside the virtualenv.
AXE := $(VENV)/axe-core/axe.min.js
$(AXE):
	mkdir -p $(VENV)/axe-core
	cd $(VENV)/axe-core && npm pack --silent axe-core@4.14.1 >/dev/null && tar xzf axe-core-4.14.1.tgz --strip-components=1 package/axe.min.js
axe: $(AXE)

# The Finnish and Swedish catalogs, compiled by Babel (no gettext needed to run PayLinks).
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
locale/%/LC_MESSAGES/django.mo: locale/%/LC_MESSAGES/django.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

messages: $(MO_FILES)

run: install messages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup --base-url http://$(HOST):$(PORT)
	@echo "Starting the web server and the django-q2 worker on http://$(HOST):$(PORT)/ (Ctrl-C stops both)"
	@$(PY) manage.py qcluster & worker=$$!; \
		trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(PY) manage.py runserver $(HOST):$(PORT)

# The whole suite on every core: unit, sandbox over HTTP, live servers, processes, the browser.
test: install browser gettext axe messages
	$(PY) -m pytest -n auto --durations=25

# While working: everything but the browser, live-server, other-process and fuzzing tests (the
# `e2e` and `slow` markers), in about a minute and a half.
quick: install messages
	$(PY) -m pytest -n auto -m "not e2e and not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
