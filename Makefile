# clusterip-guard: one entry point for developers and CI.
#   make demo   set everything up and show the exercise on a real node (or each mode beside the local control plane)
#   make test   lint, types, the docs and every test (unit, HTTP over TLS, end to end on a real kube-apiserver)
#   make docs   the user guide (docs/, mkdocs.yml) as a site in .dev/site
#   make cluster       a real one-node cluster (root, Linux): kubeconfig in .dev/cluster/kubeconfig
#   make cluster-down  stop it and undo every change it made to the host
#   make image  the container image, built without a registry (root, buildah): hack/image/README.md
#   make test-versions  the suites that depend on the API server, on each Kubernetes release of
#               the matrix (docs/versions.md); not part of make test: it builds five releases
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEV    := .dev
# Another Kubernetes release's API server for `make up` and `make bench` (e.g. v1.33.13: one
# of hack/controlplane/versions); empty: the pinned release.
KUBERNETES ?=

.PHONY: setup controlplane lint docs unit test test-versions up down demo bench bench-scan bench-scale bench-burst fuzz image clean cluster cluster-down chart differential

# The virtualenv is rebuilt when pyproject.toml changes. It holds the `docs` extra too: `make
# lint` (so `make test`, what CI runs on a fresh machine) builds the user guide with --strict.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $@

setup: $(VENV)/.installed

# kube-apiserver, etcd, the node's binaries, kubectl and helm, built once per pinned version.
controlplane:
	hack/controlplane/build.sh node

# The user guide, built the way `make docs` builds it but without writing the generated pages:
# a stale one fails tests/unit/test_policy_reference.py instead. --strict turns a broken link
# or anchor into a failure; --quiet would silence those warnings and pass, so it is not used.
# NO_MKDOCS_2_WARNING: Material's banner about MkDocs 2.0, printed on every build.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DEV)/site

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(MKDOCS)

# The policy file's reference page, generated from the keys the policy file reads
# (app/clusterip_guard/policy_reference.py), then the site in .dev/site.
docs: setup
	$(BIN)/python -m clusterip_guard.policy_reference
	$(MKDOCS)

# The chart's admission templates, generated from the table of admission entries
# (core/admission.py); tests/unit/test_rendering.py fails when they are stale.
chart: setup
	$(BIN)/python -m clusterip_guard.rendering

unit: setup
	$(BIN)/pytest -m "not e2e"

test: lint controlplane
	$(BIN)/pytest

up: setup controlplane
	DEV_DIR=$(DEV) KUBERNETES=$(KUBERNETES) hack/up.sh

# Each release of hack/controlplane/versions/matrix.json: its kube-apiserver built once (about
# 5 minutes each on 2 cores), the suites run against it, one table printed and recorded in
# docs/versions.md with the date and the commit. About 40 minutes warm.
test-versions: setup controlplane
	$(BIN)/python hack/test_versions.py

# On a machine that can run a node: the exercise on a real node, installed by Helm; elsewhere
# (or with DEMO=loopback) each mode beside the local control plane, saying why.
demo: setup controlplane
	DEV_DIR=$(DEV) hack/demo.sh

down: setup
	$(BIN)/python hack/controlplane/localcluster down --dir $(DEV)

# A real node beside the control plane (docs/design.md, "The local control plane"): installs
# its Debian packages, builds the node binaries and helm, returns when the node is Ready.
cluster: setup
	$(BIN)/python hack/cluster/cluster.py --dir $(DEV) up

cluster-down:
	$(PYTHON) hack/cluster/cluster.py --dir $(DEV) down

# What the webhook costs the API server beside no policy and the in-process policies, then
# what it adds over a webhook that does nothing (a few setups, nine rounds), then the webhook
# alone against its floor, then the targets judged from those runs; tables on stdout, JSON in
# .dev/bench, plots in docs/benchmarks (docs/benchmarks.md). About 35 minutes; each run waits
# for a quiet machine. Exits 1 when a target is not met.
# KUBERNETES=VERSION: every control plane the benchmarks start is that release's.
bench bench-scan bench-burst: export CLUSTERIP_GUARD_KUBERNETES = $(KUBERNETES)
bench: setup controlplane
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	mkdir -p $(DEV)/bench
	$(BIN)/python benchmarks/apiserver_admission.py | tee $(DEV)/bench/apiserver.md
	$(BIN)/python benchmarks/apiserver_admission.py --rounds 9 --concurrency 1 \
		--setups enforce "webhook floor" mutate "mutating floor" --objects exposed \
		--out $(DEV)/bench/apiserver-floors.json | tee $(DEV)/bench/apiserver-floors.md
	$(BIN)/python benchmarks/review_throughput.py | tee $(DEV)/bench/webhook.md
	$(BIN)/python benchmarks/plots.py
	$(BIN)/python benchmarks/targets.py --out $(DEV)/bench/targets.md

# Admission under a burst (docs/benchmarks.md, "Under a burst"): Service and Pod writes at
# concurrency 32 and 64 for no policy, the hand-written VAP/MAP, the native engine and the
# webhook (one replica on loopback), three alternating rounds; the tables on stdout and in
# .dev/bench/burst.md, raw runs in .dev/bench/burst.json: 252 runs, 35 minutes on 2 cores
# shared with other suites (load 9-12). Exits 1 when a goal is not met.
# NODE=1: the webhook as the chart's two replicas behind its Service on the real node instead
# (`make cluster` and `make image` first; .dev/bench/burst-node.*).
bench-burst: setup controlplane
	mkdir -p $(DEV)/bench
	$(BIN)/python benchmarks/burst.py $(if $(NODE),--node $(DEV))

# scan and report writing on 10,000 Services in 100 namespaces and 2,000 more in one
# (figures in docs/benchmarks.md). A few minutes.
bench-scan: setup controlplane
	$(BIN)/python benchmarks/scan_services.py --crowded 2000

# The same at scale: 100,000 Services in 1,000 namespaces, then 10,000 more in one namespace,
# created through benchmarks/apiload (Go, concurrent HTTP/2); each pass's time and peak
# memory, the table for docs/benchmarks.md in .dev/bench/scale.md. 17 minutes on 2 cores,
# most of it creating the Services (100,000 in 11 minutes).
bench-scale: export CLUSTERIP_GUARD_KUBERNETES = $(KUBERNETES)
bench-scale: setup controlplane
	mkdir -p $(DEV)/bench
	$(BIN)/python benchmarks/scan_services.py --services 100000 --namespaces 1000 \
		--crowded 10000 | tee $(DEV)/bench/scale.md

# The native engine against the webhook at length: 2,000 seeded Services and updates through
# both (400 in each of the five namespaces: more would fill the cluster's 2,768 node ports with
# the Services that existed before governance), side by side on the local control plane
# (`make test` runs 60 each; docs/design.md, "Engines").
differential: setup controlplane
	CLUSTERIP_GUARD_NATIVE_CASES=400 $(BIN)/pytest tests/e2e/test_native_e2e.py

# A long fuzzing run over HTTPS (100,000 inputs; the tests make a short one).
fuzz: setup
	$(BIN)/python benchmarks/fuzz.py --inputs 100000

# clusterip-guard:<version> from the Dockerfile, and .dev/images/clusterip-guard.tar for
# `ctr -n k8s.io images import`. Needs no virtualenv: the host's python3 fills the wheelhouse.
image:
	hack/image/build.sh

clean: down
	rm -rf $(DEV) $(VENV)
