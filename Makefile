# Gyre: one Makefile drives the venv, the checks, the test cluster and the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export UV_NATIVE_TLS := 1
# A KUBECONFIG from the environment means "test against that cluster"; otherwise the local test cluster
# (also when KUBECONFIG is the local cluster's own, as after `eval "$$(make cluster-env)"`).
LOCAL_KUBECONFIG := $(ROOT)/.cluster/kubeconfig
ifeq ($(origin KUBECONFIG),environment)
ifneq ($(abspath $(KUBECONFIG)),$(LOCAL_KUBECONFIG))
EXTERNAL_CLUSTER := 1
endif
endif
ifneq ($(EXTERNAL_CLUSTER),1)
KUBECONFIG := $(LOCAL_KUBECONFIG)
endif
export KUBECONFIG

.PHONY: help venv lock lint typecheck verify manifests test test-deps test-unit test-integration test-e2e \
        cluster-build cluster-up cluster-down cluster-env cluster-status image deploy undeploy demo upgrade-crds \
        argocd-statuses \
        e2e-kind bench-drift bench-serving bench-burst bench-loop clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	@hack/venv.sh
	@touch $@

venv: $(VENV)/.installed ## Create .venv with the project and its dev tools

lock: ## Re-pin constraints.txt from pyproject.toml
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -q -o constraints.txt.new
	{ echo '# Pinned versions for the dev venv and the image: regenerate with `make lock`.'; cat constraints.txt.new; } > constraints.txt
	rm -f constraints.txt.new

manifests: venv ## Regenerate CRD YAML (from gyre.api), the rendered install and Argo CD health checks
	$(PY) -m gyre.api.crdgen --write
	eval "$$(hack/cluster/env.sh)" && $(PY) hack/generate_install.py --write

lint: venv ## ruff, import-linter contracts
	ruff check operator tests benchmarks pipelines
	ruff format --check operator tests benchmarks pipelines
	lint-imports

typecheck: venv ## mypy --strict on the package
	mypy

verify: venv ## Fail when generated files, lint or types are not clean
	$(PY) -m gyre.api.crdgen --check
	eval "$$(hack/cluster/env.sh)" && $(PY) hack/generate_install.py --check
	$(MAKE) -s lint typecheck

test: venv ## Run every tier: unit, integration and e2e (brings the test cluster up)
	hack/test-all.sh

test-deps: ## Host packages the tests need (Debian's chromium for the drift report, promtool for the alerts)
	@hack/test-deps.sh

test-unit: venv test-deps ## Pure code, seconds (chart tests render with the pinned helm of `make cluster-build`)
	eval "$$(hack/cluster/env.sh)" && $(PY) -m pytest tests/unit -q

test-integration: venv cluster-up ## The operator against a real API server
	$(PY) -m pytest tests/integration -q

test-e2e: venv test-deps cluster-up image ## Real pods running the project image
	$(PY) -m pytest tests/e2e -q

argocd-statuses: venv cluster-up image ## Re-record the statuses the Argo CD health tests replay (tests/statuscapture.py)
	GYRE_CAPTURE_STATUSES=$(ROOT)/tests/data/argocd/observed.json $(PY) -m pytest tests/integration tests/e2e -q

cluster-build: ## Build (or reuse) the pinned Kubernetes components
	hack/cluster/build.sh

cluster-up: ## Bring up the single-node test cluster (idempotent)
ifeq ($(EXTERNAL_CLUSTER),1)
	@echo "cluster-up: using the cluster that KUBECONFIG=$(KUBECONFIG) names"
else
	hack/cluster/up.sh
endif

cluster-down: ## Tear the test cluster down and restore the host
	hack/cluster/down.sh

cluster-env: ## Print export lines for KUBECONFIG and PATH
	@hack/cluster/env.sh

image: ## Build gyre:dev and make it available to the cluster
	hack/image.sh

deploy: venv ## Install the CRDs and the operator (gyre:dev) into the KUBECONFIG cluster
	hack/deploy.sh

upgrade-crds: ## Apply the chart's CRDs to the KUBECONFIG cluster (before `helm upgrade`, which never changes CRDs)
	eval "$$(hack/cluster/env.sh)" && kubectl apply --server-side --force-conflicts -f charts/gyre/crds/

undeploy: ## Remove the operator and the CRDs
	hack/deploy.sh --delete

demo: venv cluster-up image deploy ## The whole loop on the local cluster
	hack/demo.sh

e2e-kind: venv ## Run the e2e suite on a kind cluster (needs Docker that can pull images)
	hack/e2e-kind.sh

bench-drift: venv ## Drift benchmark against Evidently (BENCH_ARGS=--preset gyre ...)
	$(PY) benchmarks/drift/run.py $(BENCH_ARGS)

bench-serving: venv ## Serving benchmark against MLServer and KServe
	$(PY) benchmarks/serving/run.py

bench-burst: venv cluster-up ## Burst of 500 and 2,000 TrainingRuns against a bare client loop (BURST_ARGS=...)
	$(PY) benchmarks/burst/run.py $(BURST_ARGS)

bench-loop: venv cluster-up image ## Loop time: degraded (or drifted) check to the new model serving (LOOP_ARGS=...)
	$(PY) benchmarks/loop/run.py $(LOOP_ARGS)

clean: ## Remove the venv and caches inside the repo
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
