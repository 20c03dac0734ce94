# okra — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_BIN := tools/local-aws/node/node_modules/.bin
VENV_BIN := .tools/venv/bin
CARGO ?= cargo
# Every Wait state of the demo's executions waits this long (sfn-local --fast-waits).
DEMO_FAST_WAITS_MS ?= 200

.PHONY: help setup kubectl chromium prometheus build test unit e2e lint fmt fmt-check clippy lint-template lint-asl asl schema demo clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

setup: kubectl ## Install the local AWS (moto, cargo-lambda, cfn-lint, SAM CLI, the Kubernetes Python client, Node 22, aws-local-stepfunctions) into .tools/ and tools/local-aws/node/, and kubectl
	bash tools/local-aws/install.sh

kubectl: ## Install Debian's kubectl (package kubernetes-client; the local Kubernetes API's tests) when it is missing
	@if [ -x "$${KUBECTL:-/usr/bin/kubectl}" ]; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "installing Debian's kubectl (apt-get install kubernetes-client; needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client; \
	else echo "kubectl is missing and apt-get is not available: install it, or set KUBECTL" >&2; exit 1; fi

build: ## Build every crate and function binary (debug)
	$(CARGO) build --workspace --bins --locked

unit: ## Unit and property tests (no local AWS needed)
	$(CARGO) test --locked -p okra-core -p okra-aws -p xtask

chromium: ## Install Debian's chromium (the HTML report's rendering test) when it is missing
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ]; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (apt-get; needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else echo "chromium is missing and apt-get is not available: install it, or set CHROMIUM" >&2; exit 1; fi

prometheus: ## Install Debian's prometheus (the analysis tests' real Prometheus server) when it is missing
	@if [ -x "$${PROMETHEUS:-/usr/bin/prometheus}" ]; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "installing Debian's prometheus (apt-get; needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	else echo "prometheus is missing and apt-get is not available: install it, or set PROMETHEUS" >&2; exit 1; fi

test: setup chromium prometheus build lint-template lint-asl ## The whole suite: unit, property, emulator and state-machine tests, template and ASL lint
	$(CARGO) test --workspace --locked

e2e: setup prometheus build ## Only the end-to-end tests (real binaries, moto, the shipped ASL)
	$(CARGO) test --locked -p okra-e2e -- --nocapture

demo: setup build ## The rollout story through the shipped state machine, the real functions and moto (okra-demo)
	$(CARGO) run --locked -q -p okra-demo --bin okra-demo -- --fast-waits $(DEMO_FAST_WAITS_MS) --report target/okra-demo-report.html

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
	$(CARGO) xtask asl --check
	PATH=$(CURDIR)/$(NODE_BIN):$$PATH asl-validator --json-path statemachine/*.asl.json

asl: ## Regenerate statemachine/rollout.asl.json from its generator (xtask/src/asl.rs)
	$(CARGO) xtask asl

schema: ## Regenerate schema/cell.schema.json, schema/events/ and template.yaml's event schemas from the Rust types
	OKRA_BLESS=1 $(CARGO) test -p okra-core --test schema

clean-local: ## Stop local AWS servers started by tools/local-aws/start.sh
	-bash tools/local-aws/stop.sh

# --- sam build ----------------------------------------------------------------------------------
# template.yaml builds every function with this Makefile (BuildMethod: makefile, CodeUri: ".",
# built in source: samconfig.toml). `sam build` runs `make build-<LogicalId>` once per function
# with ARTIFACTS_DIR set: the first compiles the whole workspace once for arm64 (cargo lambda,
# one dependency tree, one target dir), the others find it built; each copies its bootstrap.
LAMBDA_FUNCTIONS := api check-metrics discover-clusters dispatcher ensure-target-groups rollout-state shift-weights
CARGO_LAMBDA ?= $(if $(wildcard $(VENV_BIN)/cargo-lambda),$(CURDIR)/$(VENV_BIN)/cargo-lambda lambda,cargo lambda)
build-ApiFunction: PKG = api
build-CheckMetricsFunction: PKG = check-metrics
build-DiscoverClustersFunction: PKG = discover-clusters
build-DispatcherFunction: PKG = dispatcher
build-EnsureTargetGroupsFunction: PKG = ensure-target-groups
build-RolloutStateFunction: PKG = rollout-state
build-ShiftWeightsFunction: PKG = shift-weights
SAM_BUILD_TARGETS := build-ApiFunction build-CheckMetricsFunction build-DiscoverClustersFunction \
  build-DispatcherFunction build-EnsureTargetGroupsFunction build-RolloutStateFunction \
  build-ShiftWeightsFunction

.PHONY: lambda-release $(SAM_BUILD_TARGETS)
lambda-release: ## Release build of every function for Lambda (arm64, target/lambda/*/bootstrap), as `sam build` runs it
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH=$(CURDIR)/$(VENV_BIN):$$PATH $(CARGO_LAMBDA) build --release --arm64 --locked $(addprefix -p ,$(LAMBDA_FUNCTIONS))

$(SAM_BUILD_TARGETS): lambda-release
	test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is set by sam build"; exit 1; }
	cp target/lambda/$(PKG)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"

# --- benchmarks (tools/bench/, bench/) -------------------------------------------------------------
# Release builds go to their own target dirs, built once and reused (lto + codegen-units = 1 is slow).
BENCH_PKGS := $(addprefix -p ,$(LAMBDA_FUNCTIONS))

.PHONY: bench bench-build
bench-build: setup ## Release builds for the benchmarks: x86_64 (target/bench), arm64 zips (target/bench-arm64), okra-bench
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	CARGO_TARGET_DIR=target/bench $(CARGO) build --release --locked $(BENCH_PKGS)
	CARGO_TARGET_DIR=target/bench-tool $(CARGO) build --release --locked -p okra-bench
	PATH=$(CURDIR)/$(VENV_BIN):$$PATH CARGO_TARGET_DIR=target/bench-arm64 cargo-lambda lambda build --release --arm64 \
	  --locked --output-format zip --lambda-dir target/bench-arm64/lambda $(BENCH_PKGS)

bench: bench-build ## Measure cold start, RSS, zip size, AWS calls, discovery at scale, rollout overhead, cost: writes BENCHMARKS.md
	$(VENV_BIN)/python3 tools/bench/bench.py --command "make bench"

.PHONY: bench-profiles
bench-profiles: ## Build shift-weights with opt-level 3, "z", 3 for okra + "s" for deps, panic=unwind (slow, once); `make bench` then compares them
	bash tools/bench/profiles.sh

# --- a second emulator (issue 12): the cross-check against fakecloud -------------------------------
FAKECLOUD_VERSION := 0.51.0
FAKECLOUD := .tools/fakecloud/bin/fakecloud

$(FAKECLOUD):
	$(CARGO) install fakecloud --version $(FAKECLOUD_VERSION) --locked --root .tools/fakecloud

.PHONY: fakecloud fakecloud-check
fakecloud: $(FAKECLOUD) ## Install fakecloud (crates.io, AGPL) into .tools/fakecloud: 30-55 min on 2 cores, once

fakecloud-check: setup build $(FAKECLOUD) ## e2e suites on fakecloud; failures compared with tools/fakecloud/expected-failures.txt
	bash tools/fakecloud/check.sh

# --- reliability (issue 8): soak under faults, fuzzing ---------------------------------------------
FUZZ_SECONDS ?= 600
CARGO_FUZZ := .tools/cargo-fuzz/bin/cargo-fuzz

.PHONY: soak fuzz
soak: setup build ## The reliability suite with 20 rollouts under 30 % injected AWS faults (OKRA_SOAK_ROLLOUTS, OKRA_FAULT_SEED)
	OKRA_SOAK_ROLLOUTS=$${OKRA_SOAK_ROLLOUTS:-20} $(CARGO) test --locked -p okra-e2e --test e2e -- reliability:: --nocapture

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --root .tools/cargo-fuzz

fuzz: $(CARGO_FUZZ) ## Fuzz the spec parser/validator and the CEL conditions, FUZZ_SECONDS each (default 600); stable toolchain via RUSTC_BOOTSTRAP
	cd fuzz && RUSTC_BOOTSTRAP=1 ../$(CARGO_FUZZ) run -O spec -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048
	cd fuzz && RUSTC_BOOTSTRAP=1 ../$(CARGO_FUZZ) run -O condition -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048
