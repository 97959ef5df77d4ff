# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# `make run` installs the runtime pins only; `make test` adds the test pins on top.
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CONFIG ?= config/demo.yaml

.PHONY: run test lint format install install-dev lock clean

run: $(RUNTIME_STAMP)
	$(BIN)/beffroi serve -c $(CONFIG)

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

# The virtualenv follows the lock files: the runtime part whenever requirements.lock or the
# project changes, the test part whenever requirements-dev.lock changes (or the runtime part).
$(RUNTIME_STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Beffroi needs Python 3.11 or newer; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.lock
	$(PIP) install -r requirements-dev.lock
	touch $@

# Re-pin every dependency (needs the package registry): edit pyproject.toml, then `make lock`.
# The runtime pins are resolved first, alone; the test pins are then resolved with the runtime
# pins as constraints, so both files agree and requirements-dev.lock lists only what it adds.
LOCK_PIP := .lock-venv/bin/python -m pip --quiet --disable-pip-version-check
LOCK_FREEZE := .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v '^pip=='
lock:
	rm -rf .lock-venv *.egg-info
	$(PYTHON) -m venv .lock-venv
	$(LOCK_PIP) install 'setuptools>=75' wheel -e .
	( echo "# Pinned runtime dependencies of beffroi: what \`make run\` and the container image install."; \
	  echo "# setuptools and wheel are here to install the project itself without build isolation."; \
	  echo "# Regenerate with: make lock (also rewrites requirements-dev.lock)"; \
	  $(LOCK_FREEZE) ) > requirements.lock
	$(LOCK_PIP) install -c requirements.lock -e '.[test]'
	( echo "# Pinned test and development dependencies of beffroi, on top of the runtime pins:"; \
	  echo "# what \`make test\` adds. Regenerate with: make lock"; \
	  echo "-r requirements.lock"; \
	  $(LOCK_FREEZE) | grep -vxFf requirements.lock ) > requirements-dev.lock
	rm -rf .lock-venv *.egg-info

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
