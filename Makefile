# okra — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_BIN := tools/local-aws/node/node_modules/.bin
VENV_BIN := .tools/venv/bin
CARGO ?= cargo

.PHONY: help setup build test unit e2e lint fmt fmt-check clippy lint-template lint-asl asl schema demo clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

setup: ## Install the local AWS (moto, cargo-lambda, cfn-lint, SAM CLI, Node 22, aws-local-stepfunctions) into .tools/ and tools/local-aws/node/
	bash tools/local-aws/install.sh

build: ## Build every crate and function binary (debug)
	$(CARGO) build --workspace --bins --locked

unit: ## Unit and property tests (no local AWS needed)
	$(CARGO) test --locked -p okra-core -p okra-aws

test: setup build lint-template lint-asl ## The whole suite: unit, property, emulator and state-machine tests, template and ASL lint
	$(CARGO) test --workspace --locked

e2e: setup build ## Only the end-to-end tests (real binaries, moto, the shipped ASL)
	$(CARGO) test --locked -p okra-e2e -- --nocapture

demo: setup build ## A full local rollout through the shipped state machine, printed as it goes
	$(CARGO) test --locked -p okra-e2e --test rollout -- --nocapture --test-threads=1

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Fail on unformatted code
	$(CARGO) fmt --all -- --check

clippy: ## Lint with clippy, warnings are errors
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

lint: fmt-check clippy lint-template lint-asl ## Every lint

lint-template: setup ## cfn-lint and sam validate --lint on template.yaml
	$(VENV_BIN)/cfn-lint template.yaml
	@if [ -x $(VENV_BIN)/sam ]; then \
	  home=$$(mktemp -d); HOME=$$home SAM_CLI_TELEMETRY=0 $(VENV_BIN)/sam validate --lint -t template.yaml --region us-east-1; \
	  rc=$$?; rm -rf $$home; exit $$rc; \
	else echo "sam CLI not installed: cfn-lint alone checked template.yaml"; fi

lint-asl: setup ## asl-validator on every state machine, and the generated ASL in sync with its generator
	python3 statemachine/generate.py --check
	PATH=$(CURDIR)/$(NODE_BIN):$$PATH asl-validator --json-path statemachine/*.asl.json

asl: ## Regenerate statemachine/rollout.asl.json from statemachine/generate.py
	python3 statemachine/generate.py

schema: ## Regenerate schema/cell.schema.json from the spec types
	OKRA_BLESS=1 $(CARGO) test -p okra-core --test schema

clean-local: ## Stop local AWS servers started by tools/local-aws/start.sh
	-bash tools/local-aws/stop.sh
