# The project's commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-fast lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	touch $(STAMP)

test: $(STAMP)  ## the whole suite
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## the quick inner loop: everything but tests marked slow
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(STAMP)  ## ruff, formatting, mypy on the packages, layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

DEMO_REPO := demo-repo

demo: $(STAMP)  ## build a small DemoCam registry repository with the butler CLI and query it
	rm -rf $(DEMO_REPO)
	PATH="$(abspath $(BIN)):$$PATH" bash docs/examples/registry-demo/run.sh $(DEMO_REPO)
	@echo
	@echo "The demo repository is in $(abspath $(DEMO_REPO)) (registry: $(DEMO_REPO)/registry.sqlite3)."
	@echo "Query it, for example:"
	@echo "  $(BIN)/butler query-collections $(DEMO_REPO)"
	@echo "  $(BIN)/butler query-datasets $(DEMO_REPO) raw --collections DemoCam/defaults --where \"band = 'r'\""
	@echo "  $(BIN)/butler query-data-ids $(DEMO_REPO) visit detector --where \"skymap = 'demo_sky' AND patch = 0\""

bench: $(STAMP)  ## print registry and merge scale figures (never pass/fail)
	$(BIN)/python benchmarks/registry.py
	$(BIN)/python benchmarks/merge.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
