# carehub: `make run` brings the whole thing up locally, `make test` runs every check.
# Python packages come from the lock only: requirements/runtime.txt and requirements/dev.txt,
# exported from uv.lock with a hash for every file (pip refuses anything else). To change them,
# edit pyproject.toml and run `make lock`, or `make upgrade [PACKAGE=name]` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
UV_EXPORT := $(BIN)/uv export --frozen --no-emit-project --no-dev --format requirements-txt --quiet

.PHONY: install install-dev run test lint format bench lock upgrade clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The runtime set (what `make run` needs), then carehub itself without resolving anything.
$(RUNTIME): requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(PIP) install --quiet --require-hashes --no-deps -r requirements/runtime.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

# The dev set: the runtime set plus the test and lint tools (what `make test` needs).
$(DEV): requirements/dev.txt $(RUNTIME)
	$(PIP) install --quiet --require-hashes --no-deps -r requirements/dev.txt
	touch $@

install: $(RUNTIME)

install-dev: $(DEV)

run: install
	$(BIN)/carehub run

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint supabase app/sql --processes 2

test: lint
	$(BIN)/pytest

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev
	$(BIN)/python -m bench

# Re-resolve after a change to pyproject.toml, keeping every other pin.
lock: install-dev
	$(BIN)/uv lock
	$(UV_EXPORT) -o requirements/runtime.txt
	$(UV_EXPORT) --extra dev -o requirements/dev.txt

# Move to the newest releases allowed by pyproject.toml: all, or PACKAGE=name only.
upgrade: install-dev
	$(BIN)/uv lock $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)
	$(UV_EXPORT) -o requirements/runtime.txt
	$(UV_EXPORT) --extra dev -o requirements/dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
