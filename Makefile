# loan-notify: make help
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAM_VENV ?= .venv-sam
PORT ?= 4566
TEST_WORKERS ?= 2
TIME_SCALE ?= 1
CONFIG_ENV ?= default
export SAM_CLI_TELEMETRY := 0
export PYTHONPATH := $(CURDIR):$(CURDIR)/layers/shared

.DEFAULT_GOAL := help
.PHONY: help install demo local test lint unit flow build validate deploy deploy-backup bench bench-import costs \
	clean ops openapi scale-model bench-burst soak fuzz templates previews browser

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}' \
		| sed -e 's/\$$(PORT)/$(PORT)/g' -e 's/\$$(CONFIG_ENV)/$(CONFIG_ENV)/g'

# The project itself is installed editable (the loan-notify-ops console script). setuptools warns that an editable
# install maps loan_notify from layers/shared, which is the point: that one notice is silenced, nothing else.
$(BIN)/.installed: requirements-dev.txt layers/shared/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed ## create .venv with the pinned dependencies and the loan-notify-ops command

demo: install ## deploy the local cloud and run the scripted scenario
	$(BIN)/python -m localcloud.demo

local: install ## serve the local cloud on 127.0.0.1:$(PORT); TIME_SCALE=0.01 runs a simulated second in 10 ms
	$(BIN)/python -m localcloud.server --port $(PORT) --time-scale $(TIME_SCALE)

lint: install templates ## ruff, cfn-lint, statelint, ASL placeholder check, templates
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml backup-region.yaml
	$(BIN)/statelint --ignore=FLOAT statemachine/*.asl.json
	$(BIN)/python -m localcloud.check_asl template.yaml
	$(BIN)/python -m localcloud.openapi --check

templates: install ## check every template against carrier and mailbox rules and its recorded hash (ARGS="--record")
	$(BIN)/python -m loan_notify.template_check $(ARGS)

previews: install ## write build/previews/index.html: every template in every locale and channel, emails as PNG
	$(BIN)/python -m contenttools.previews $(ARGS)

unit: install ## unit tests (no moto, no network)
	$(BIN)/python -m pytest tests/unit -q

flow: install ## flow tests on the local cloud (the real template, in process)
	$(BIN)/python -m pytest tests/flow -q

test: lint ## lint, then every unit, flow and browser test (two worker processes, one local cloud each)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

browser: install ## the review console in headless Chromium (needs Debian's chromium package)
	$(BIN)/python -m pytest tests/browser -q

fuzz: install ## the borrower API fuzz run at full size (200 generated requests per operation)
	FUZZ_EXAMPLES_PER_OPERATION=200 $(BIN)/python -m pytest tests/flow/test_api_fuzz.py -q

bench: install ## end-to-end throughput on the local cloud (in process)
	$(BIN)/python -m localcloud.bench

openapi: install ## write docs/openapi.json from the borrower API's routes and models
	$(BIN)/python -m localcloud.openapi

costs: install ## transitions, API calls and list-price cost per notice (happy and fallback paths)
	$(BIN)/python -m localcloud.costs

scale-model: install ## model 100,000 notices at the 08:00 window in real AWS, paced by the real Pacer (ARGS="--n ...")
	$(BIN)/python -m loadtools.scale_model $(ARGS)

bench-import: install ## each pipeline handler's cold import vs a bare `import boto3` (fresh processes, median)
	$(BIN)/python -m loadtools.import_bench $(ARGS)

soak: install ## faults and redeliveries in the middle of traffic: every change confirmed or owned (ARGS="--changes 500")
	$(BIN)/python -m loadtools.fault_soak $(ARGS)

bench-burst: install ## a month-end burst against an SMS quota on the local cloud (ARGS="--n 2000 --quota 2")
	$(BIN)/python -m loadtools.burst_bench $(ARGS)

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

validate: $(SAM_VENV)/.installed ## sam validate --lint
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml

build: $(SAM_VENV)/.installed ## sam build (no container; the layer fetches python3.13 arm64 wheels)
	PATH="$(abspath $(SAM_VENV))/bin:$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml

deploy: build ## sam deploy --config-env $(CONFIG_ENV) (needs AWS credentials)
	$(SAM_VENV)/bin/sam deploy --config-env $(CONFIG_ENV)

deploy-backup: $(SAM_VENV)/.installed ## backup-region.yaml to BackupRegion, after deploy (--config-env $(CONFIG_ENV)-backup)
	$(SAM_VENV)/bin/sam deploy --config-env $(CONFIG_ENV)-backup

clean: ## remove build output and virtualenvs
	rm -rf .aws-sam $(VENV) $(SAM_VENV) .pytest_cache .ruff_cache *.egg-info

ops: install ## the ops command, e.g. make ops ARGS="cases list" (finds make local by itself)
	$(BIN)/loan-notify-ops $(ARGS)
