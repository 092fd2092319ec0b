# modelwatch -- developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv lock test-latest soak lint typecheck unit test test-cluster bench demo \
        cluster-up cluster-down cluster-status s3-up images kind-up kind-load kind-down kind-e2e \
        deploy undeploy clean promtool helm chromium

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# The venv installs exactly the locked set (every extra and the dev tools, with
# hashes), then the project itself without dependencies.
$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(STAMP) ## Create .venv from the lock: the project, every extra and the dev tools.

lock: venv ## Refresh uv.lock and requirements/*.txt from pyproject.toml (LOCK_ARGS=--upgrade for newer releases).
	PATH=$(CURDIR)/$(BIN):$$PATH bash hack/lock.sh $(LOCK_ARGS)

test-latest: venv ## Unit tests on the newest allowed releases, in a scratch venv; names the release that breaks them.
	$(BIN)/python hack/test_latest.py $(PYTEST_ARGS)

lint: venv ## ruff and mypy --strict.
	$(BIN)/ruff check operator monitor_image tests bench
	$(BIN)/ruff format --check operator monitor_image tests bench
	$(BIN)/mypy

unit: venv ## Unit tests only (no cluster).
	$(BIN)/pytest -m 'not cluster' $(PYTEST_ARGS)

cluster-up: ## Bring up (or reuse) the local single-node cluster.
	@bash hack/cluster-up.sh

cluster-down: ## Stop the processes cluster-up started and remove their state.
	@bash hack/cluster-down.sh

cluster-status: ## Report the local cluster's state.
	@bash hack/cluster-status.sh

s3-up: cluster-up ## Build (once) and start the S3 store (SeaweedFS) beside the cluster; only s3:// stores need it.
	@bash hack/s3-up.sh

images: ## Build the base, monitor and operator images and import them into containerd.
	@bash hack/images.sh

promtool: ## Install promtool (Debian's prometheus package) for the alerting rule tests.
	@bash hack/monitoring-tools.sh promtool

helm: ## Build helm from its Go module into the cache (hack/build-helm.sh) for the chart tests.
	@bash hack/monitoring-tools.sh helm

chromium: ## Install headless Chromium (Debian's chromium package) for the report test.
	@bash hack/monitoring-tools.sh chromium

test: venv cluster-up s3-up images promtool helm chromium ## Every test, cluster tests included.
	KUBECONFIG=$$(bash hack/kubeconfig-path.sh) $(BIN)/pytest $(PYTEST_ARGS)

bench: venv cluster-up s3-up images ## Benchmarks; figures go to bench/results/.
	KUBECONFIG=$$(bash hack/kubeconfig-path.sh) $(BIN)/python -m bench

soak: venv cluster-up images ## The loop for SOAK_PERIODS (60) one-minute checks with 3 drift episodes and restarts; figures to bench/results/soak.json.
	KUBECONFIG=$$(bash hack/kubeconfig-path.sh) $(BIN)/python hack/soak.py

demo: venv ## The whole drift -> retrain -> rollout loop on a local cluster.
	@bash hack/demo.sh

kind-up: ## (kind users) Create a kind cluster named modelwatch (node image built here if it cannot be pulled).
	@bash hack/kind-up.sh

kind-load: ## (kind users) Build the images with docker and load them into kind.
	@bash hack/kind-load.sh

kind-down: ## (kind users) Delete the kind cluster (images and caches stay).
	@bash hack/kind-down.sh

kind-e2e: venv ## The end-to-end loop on kind: kind-up, kind-load, deploy, samples, e2e test.
	@bash hack/kind-e2e.sh

deploy: ## Install the CRD, RBAC, store and operator into the current kube context.
	kubectl apply --server-side -k crds
	kubectl wait --for=condition=Established --timeout=60s crd/modelmonitors.modelwatch.io \
	  crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev
	kubectl apply --server-side -k manifests/default

undeploy: ## Remove what `make deploy` installed.
	kubectl delete --ignore-not-found -k manifests/default

clean: ## Remove the venv and build leftovers (the cluster and its caches stay).
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
