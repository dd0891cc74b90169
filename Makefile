# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# `make demo` needs only the runtime and the `report` extra (plots), not the test toolchain
DEMO_STAMP := $(VENV)/.demo-installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test check bench fuzz campaign mutate mutate-recording setup clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,report]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(DEMO_STAMP): $(VENV)/bin/python pyproject.toml
	if [ ! -e $(STAMP) ]; then \
		$(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -e '.[report]'; \
	fi
	rm -f $(VENV)/.demo-installed-*
	touch $(DEMO_STAMP)

setup: $(STAMP)

# the demo replaces its own earlier output (--force)
demo: $(DEMO_STAMP)
	$(VENV)/bin/spinemon demo --out demo-output --force

test: $(STAMP)
	$(PY) tests/lanes.py

# lint, format and types (issue 25): ruff and mypy, configured in pyproject.toml
check: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,report,check]'
	$(VENV)/bin/ruff check host protocol
	$(VENV)/bin/ruff format --check host protocol
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,report,bench]'
	$(PY) -m tests.bench

# the long fuzz campaign (>= 1,000,000 inputs); not part of `make test`
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.campaign

# mutation checks (docs/reliability.md), not part of `make test`: the hand-made
# firmware mutants each killed by their tests, then cosmic-ray's score over the
# persistence, BLE security and command-counter code (about 40 min on 2 cores)
mutate: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,report,mutate]'
	$(PY) -m tests.mutations.firmware_mutants
	$(PY) -m tests.mutations.cosmic --report mutation-report.json

# reliability campaigns (docs/reliability.md): 200 SIGKILLs of the recorder, a 2-hour session
campaign: $(STAMP)
	$(PY) -m tests.campaigns.kill --kills 200 --group 10 --jobs 2
	$(PY) -m tests.campaigns.long_session --minutes 120
	$(PY) -m tests.campaigns.bitflip --flips 3000

# hand-made mutants of the recording loader's and writer's checks, each run
# against the recording tests (docs/reliability.md); not part of `make test`
mutate-recording: $(STAMP)
	$(PY) -m tests.campaigns.mutants --jobs 2

clean:
	rm -rf $(VENV) demo-output build *.egg-info host/*.egg-info
