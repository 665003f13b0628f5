# Postventa: `make run` to try it, `make test` to check it. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint pytest bench browser dovecot translations screenshots clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Postventa needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/postventa init --demo
	$(BIN)/postventa run

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The tests that measure how fast a process stops or answers (`timed`) run alone, one at a
# time. The others run on both cores, twice: at today's date, then with the wall clock moved
# more than a year ahead, a few minutes before a DST change in the machine's zone (New York,
# 2028-03-12 07:00 UTC), so that a test which depends on today's date fails now, not on the day
# the calendar reaches it. The second pass leaves out the tests that start processes or servers
# (`slow`): the clock moves in the test process only.
MOVED_CLOCK := 2028-03-12T06:57:00+00:00
MOVED_ZONE := America/New_York
# The processes the tests start (workers, the CLI, pytest's own) read their modules compiled
# once, not from source each time.
unexport PYTHONDONTWRITEBYTECODE

pytest: $(STAMP) browser dovecot
	$(BIN)/pytest -m "not timed" -n 2 --dist worksteal
	$(BIN)/pytest -m timed
	TZ=$(MOVED_ZONE) POSTVENTA_TEST_CLOCK=$(MOVED_CLOCK) $(BIN)/pytest -q -m "not slow" -n 2

# The browser tests drive Debian's Chromium (a test tool's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }; }

# The mailbox tests talk IMAP to Debian's Dovecot, which they start as the current user on free
# ports (a system Dovecot that the package may start on 143/993 is not used).
dovecot:
	@command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || { \
		echo "installing Debian's dovecot-imapd for the mailbox tests"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q >/dev/null && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null; }; }

# After changing a text of the admin: extract, merge into the Spanish catalog, compile.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -k N_ -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l es --ignore-obsolete --no-fuzzy-matching
	$(BIN)/pybabel compile -d web/translations --statistics

# The pictures in the README, taken by the end-to-end test.
screenshots: $(STAMP) browser
	POSTVENTA_SCREENSHOTS=1 $(BIN)/pytest -q tests/test_e2e.py

bench: $(STAMP)
	@for script in $(filter-out bench/common.py,$(wildcard bench/*.py)); do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
