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

DEMO_DIR := demo

demo: $(STAMP)  ## simulate a DemoCam survey, build a repository from it, and run the demo pipeline with bps submit on Parsl
	rm -rf $(DEMO_DIR)
	PATH="$(abspath $(BIN)):$$PATH" bash docs/examples/democam/run.sh $(DEMO_DIR)
	@echo
	@echo "The demo repository is in $(abspath $(DEMO_DIR))/repo (registry: $(DEMO_DIR)/repo/registry.sqlite3);"
	@echo "the simulated survey in $(DEMO_DIR)/survey; the pipeline drawing in $(DEMO_DIR)/pipeline.svg;"
	@echo "the bps run's submit directory (quantum graph, workflow, job logs) in $(DEMO_DIR)/submit;"
	@echo "the outputs in the collection u/demo/coadds."
	@echo "Query it, for example:"
	@echo "  $(BIN)/butler query-collections $(DEMO_DIR)/repo --chains tree"
	@echo "  $(BIN)/butler query-datasets $(DEMO_DIR)/repo raw --collections DemoCam/defaults --where \"band = 'r'\""
	@echo "  $(BIN)/butler query-data-ids $(DEMO_DIR)/repo visit detector --where \"skymap = 'demo-rings' AND patch = 1042\""
	@echo "  $(BIN)/butler query-datasets $(DEMO_DIR)/repo deepCoadd --collections u/demo/coadds"
	@echo "  $(BIN)/pipetask show-qgraph $(DEMO_DIR)/submit/*.qg"
	@echo "  $(BIN)/bps report --id $(DEMO_DIR)/submit"

bench: $(STAMP)  ## print registry, merge, pipeline-graph, ingest and quantum-graph scale figures (never pass/fail)
	$(BIN)/python benchmarks/registry.py
	$(BIN)/python benchmarks/merge.py --quick
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/ingest.py --quick
	$(BIN)/python benchmarks/quantum_graph.py --quick
	$(BIN)/python benchmarks/bps_submit.py --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
