# Two entry points (see README): `make serve` runs the main job (the demo story, served over
# HTTP), `make test` runs every check. `make demo` tells the story in the terminal only.
# Both create the virtual environment on first use and refresh it when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve demo test lint typecheck unit install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/backcheck serve --demo

demo: $(STAMP)
	$(BIN)/backcheck demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# one pytest worker a core (pytest-xdist); TEST_WORKERS=0 runs the tests in this process alone
TEST_WORKERS ?= auto

test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
