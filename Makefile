# newsflow: one command per task. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install fmt lint test test-unit up down status demo schema docs models models-open eval bench clean

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(STAMP) ## Create .venv and install newsflow with its dev tools

fmt: $(STAMP) ## Format and auto-fix (ruff)
	$(BIN)/ruff format streams connectors tests bench
	$(BIN)/ruff check --fix streams connectors tests bench

lint: $(STAMP) ## ruff + mypy + the import layers (lint-imports, [tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check streams connectors tests bench
	$(BIN)/ruff format --check streams connectors tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

up: $(STAMP) ## Start the local Kafka + Elasticsearch (downloads them once)
	$(BIN)/newsflow infra up

down: ## Stop the local stacks (exactly the processes they started: default and the tests' secure one)
	@if [ -x $(BIN)/newsflow ]; then $(BIN)/newsflow infra down; $(BIN)/newsflow infra down --stack secure; fi

status: $(STAMP) ## What runs where
	$(BIN)/newsflow infra status

test: up ## Start the local stack and run every test (unit, integration, e2e), in two lanes
	tests/lanes.sh $(BIN)/python $(PYTEST_ARGS)

test-unit: $(STAMP) ## Unit tests only (no services)
	$(BIN)/python -m pytest -q tests/unit

demo: up ## Fresh machine -> local stack -> bundled feeds through the pipeline -> searches
	$(BIN)/newsflow demo

# The corpora are not shipped: ../shared/data next to the checkout, or `make models DATA=DIR`.
DATA ?= $(abspath ../shared/data)

models: $(STAMP) ## Rebuild gazetteers and NER models from ../shared/data or DATA=DIR (~20 min)
	$(BIN)/pip install --quiet -e ".[dev,models]"
	$(BIN)/python -m streams.enrich.training.gazetteers --data "$(DATA)"
	$(BIN)/python -m streams.enrich.training.links
	$(BIN)/python -m streams.enrich.training.train --ablation --data "$(DATA)"

models-open: $(STAMP) ## Rebuild ar/en NER models from openly licensed corpora only (DATA=DIR)
	$(BIN)/python -m streams.enrich.training.train --open-only --data "$(DATA)"

# EVAL_ARGS: options of eval_entities, e.g. EVAL_ARGS="--langs de,fr --limit 1000 --no-speed".
EVAL_ARGS ?=

eval: $(STAMP) ## Language ID and NER (product path beside tagger-only) on the dev sets (DATA=DIR, EVAL_ARGS=...)
	$(BIN)/python -m streams.enrich.eval_language --data "$(DATA)"
	$(BIN)/python -m streams.enrich.training.eval_entities --data "$(DATA)" $(EVAL_ARGS)
	$(BIN)/python -m streams.extract.evaluate

bench: up ## Benchmarks (connector, fetch, index stage, enrich worker); figures printed, JSON in bench/results/
	$(BIN)/python -m bench.bench_pipeline
	$(BIN)/python -m bench.bench_connector
	$(BIN)/python -m bench.bench_fetch
	$(BIN)/python -m bench.bench_index
	$(BIN)/python -m bench.bench_enrich
	$(BIN)/python -m bench.bench_enrich --n 1000 --long

schema: $(STAMP) ## Regenerate the committed JSON Schema files of the contract (one per record type)
	$(BIN)/newsflow schema --write

docs: $(STAMP) ## Regenerate the settings/metrics pages from the code, build the site (strict) into site/
	@# In CI (CI=true) only check: a stale committed page must fail there, not be rewritten.
	$(BIN)/python -m streams.tooling.docsgen $(if $(filter true 1 yes,$(CI)),--check)
	$(BIN)/mkdocs build --strict --quiet

clean: down ## Remove the virtualenv and caches (not the downloaded distributions)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
