# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/demo.yaml

.PHONY: run test lint format install lock clean

run: $(STAMP)
	$(BIN)/beffroi serve -c $(CONFIG)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

install: $(STAMP)

# The virtualenv is rebuilt from the lock file whenever the lock or the project changes.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Beffroi needs Python 3.11 or newer; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Re-pin every dependency (needs the package registry): edit pyproject.toml, then `make lock`.
lock:
	rm -rf .lock-venv *.egg-info
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' 'setuptools>=75' wheel
	( echo "# Pinned dependencies of beffroi (runtime and test). Regenerate with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v '^pip==' ) > requirements.lock
	rm -rf .lock-venv *.egg-info

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
