# Spillway: `make demo` runs a local cluster with the operator scaling a sample service;
# `make test` runs every test. Both install what they need, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(or $(SPILLWAY_CACHE),$(HOME)/.cache/spillway)
export SPILLWAY_CACHE := $(CACHE)

.PHONY: help fresh-check lock venv deps deps-images crd install-manifest image test unit integration lint cluster-up cluster-down demo demo-down clean

help:
	@echo "make demo        local control plane + operator + sample ScalableService"
	@echo "make demo CLUSTER=current   the same on the current kubeconfig's cluster (e.g. kind)"
	@echo "make demo-down   stop it"
	@echo "make test        every test: lint, unit, integration (builds the control plane once)"
	@echo "make crd         regenerate crds/ (and the chart's copy) from the models"
	@echo "make install-manifest   regenerate manifests/install.yaml from the chart"
	@echo "make image       build the operator image (needs a Docker engine)"
	@echo "make cluster-up / cluster-down   only the local control plane"
	@echo "make fresh-check the two commands in a clean clone with an empty cache, timed (DEMO_RUNS=3)"
	@echo "make lock        regenerate requirements/*.lock (the operator image's hashed dependencies)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The real components: Prometheus, HAProxy, Redis, runc, the CNI plugins, buildah and mmdebstrap
# from Debian's packages; the control plane and the real node's parts from the Go module proxy;
# the node's images (pause, a Debian base, the operator from the Dockerfile); the balancing
# providers' CRDs from their Go modules (crds.sh). All cached under $(CACHE); a warm run takes a
# few seconds. Done here, before pytest, so that a cold build never runs inside a test's timeout.
# tests/cluster/deps.sh runs the Go builds beside the images' downloads and prints each step's time.
deps:
	bash tests/cluster/deps.sh

# Only what the demo's images need (Debian's packages, the pause process, Prometheus, the images):
# a cluster of one's own (make demo CLUSTER=current) brings its own control plane and node.
deps-images:
	bash tests/cluster/deps.sh images

crd: venv
	$(VENV)/bin/spillway crd
	cp crds/scalableservices.spillway.io.yaml charts/spillway/crds/

install-manifest: crd
	bash charts/spillway/render-install.sh

IMAGE ?= ghcr.io/spillway-operator/spillway:0.1.0
image:
	docker build -t $(IMAGE) .

lint: venv
	$(VENV)/bin/ruff check operator tests bench demo
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest tests/unit

integration: venv deps
	$(PY) -m pytest -m integration tests/integration

test: lint deps
	$(PY) -m pytest tests

cluster-up: venv deps
	$(PY) -m tests.cluster up

cluster-down: venv
	$(PY) -m tests.cluster down

# DURATION: seconds of load (default 300, at least 60), e.g. `make demo DURATION=120`.
# CLUSTER=current: on the current kubeconfig's cluster (kind: images loaded; REGISTRY=... elsewhere).
demo: venv $(if $(CLUSTER),deps-images,deps)
	$(PY) -m demo up $(if $(DURATION),--duration $(DURATION)) $(if $(CLUSTER),--cluster $(CLUSTER)) \
	  $(if $(REGISTRY),--registry $(REGISTRY))

demo-down: venv
	$(PY) -m demo down

# The operator image's Python packages, pinned with their hashes by pip-tools (in a venv of its
# own, under the cache): after a change to pyproject.toml's dependencies, run this and commit.
LOCK_VENV := $(CACHE)/lock-venv
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools==7.7.0; }
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements/operator.lock pyproject.toml requirements/operator.in
	cd requirements && $(abspath $(LOCK_VENV))/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file build.lock build.in

# The README's two commands in a clean clone of HEAD with empty caches: timings and the demo's numbers.
fresh-check:
	bash tests/cluster/fresh-check.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis
