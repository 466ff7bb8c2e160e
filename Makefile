# The README's commands. Every target first makes sure .venv matches requirements.lock.
SHELL := /bin/bash
VENV := .venv
BIN := $(abspath $(VENV))/bin

# Telemetry off in everything we start; nothing reaches out for weights at import time.
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export DO_NOT_TRACK := 1
export PATH := $(BIN):$(PATH)

.PHONY: run flow ablation serve test test-all lint format setup lock
CRON ?= 0 3 * * *

## run: set up .venv if needed, check params.yaml, run the whole DVC pipeline with independent stages at once (orchestration.workers; a temporary Prefect server); the report is reports/index.html
run: setup
	python -m pipelines.run
	@echo "done. the comparison: open reports/index.html in a browser (reports/report.md: the same as Markdown)"
	@echo "curves: .venv/bin/dvc plots show; runs: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db"

## flow: the DVC graph once as a Prefect flow (a temporary Prefect server unless PREFECT_API_URL is set)
flow: setup
	python -m pipelines.run

## ablation: each option of orchestration.ablation against its family's defaults, over the seeds, on the validation split (after make run); writes docs/ablations.md's table (OPTIONS="a b": only those)
ablation: setup
	python -m pipelines.ablation $(OPTIONS)

## serve: the scheduled deployment genbench/nightly (CRON="..."); needs `prefect server start` and PREFECT_API_URL
serve: setup
	python -m pipelines.serve --cron "$(CRON)"

## test: set up .venv if needed, then run the test suite (the slow and gpu tests are excluded)
test: setup
	python -m pytest

## test-all: the whole suite, slow tests included
test-all: setup
	python -m pytest -m "not gpu"

## lint: ruff (lint + format check) and the import-linter contracts
lint: setup
	ruff check .
	ruff format --check .
	lint-imports

## format: apply ruff's formatting and safe fixes
format: setup
	ruff check --fix .
	ruff format .

setup:
	@scripts/setup_venv.sh

## lock: re-resolve requirements.in into requirements.lock (then commit both)
lock:
	scripts/lock.sh
