# One entry point for people and CI. `make demo` and `make test` set up what
# they need: a bootstrap venv with uv, then one venv per subproject synced
# from its committed lock file (requirements.lock is what images install,
# requirements-dev.lock adds the test and lint tools).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := .venv/bin/uv
UV_VERSION := 0.13.8
SUBPROJECTS := scripts-repo dbt-repo airflow-repo bi-repo
# Emulators the tests start that cannot share a subproject's environment
# (fakesnow needs DuckDB 2.0): each its own venv, from its own lock.
EMULATORS := tools/fakesnow
export UV_PYTHON_DOWNLOADS := never
# Every venv is installed with its bytecode compiled, as the images are. Where
# PYTHONDONTWRITEBYTECODE is set (this CI's machines), Python otherwise compiles
# every imported module again in every process: 2-4 s per start of dbt, Airflow
# or extract-load (measured: `extract-load extract` of 20,000 events, 6.2 s -> 2.1 s).
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: help setup system-packages images release-local demo up down test test-scripts test-dbt test-airflow test-bi test-platform test-e2e lint typecheck lock bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --- environments -------------------------------------------------------------

.venv/.synced: requirements-dev.lock requirements-bootstrap.lock
	@echo "==> repository tools (.venv)"
	@test -x $(UV) || { $(PYTHON) -m venv .venv && .venv/bin/pip install -q --disable-pip-version-check \
	  --require-hashes --no-deps -r requirements-bootstrap.lock; }
	@$(UV) pip sync -q --require-hashes --python .venv/bin/python requirements-dev.lock
	@touch $@

%/.venv/.synced: %/requirements-dev.lock %/pyproject.toml .venv/.synced
	@echo "==> $* environment ($*/.venv)"
	@test -x $*/.venv/bin/python || $(UV) venv -q --python $(PYTHON) $*/.venv
	@VIRTUAL_ENV=$*/.venv $(UV) pip sync -q --require-hashes $*/requirements-dev.lock
	@if grep -q '^\[build-system\]' $*/pyproject.toml; then VIRTUAL_ENV=$*/.venv $(UV) pip install -q --no-deps -e ./$*; fi
	@touch $@

# Debian packages the tests and `make up` drive: a real browser, real nginx
# (the viewer), openssl (its throwaway certificate), podman with runc (images and
# containers, no Docker engine), mmdebstrap (the stand-in base images), Debian's
# docker-registry (a real OCI registry), Prometheus with promtool
# and Alertmanager with amtool (the monitoring tests). A fresh machine has
# none of them; root installs them, anyone else is asked for sudo.
SYSTEM_PACKAGES := chromium nginx openssl podman runc mmdebstrap docker-registry prometheus prometheus-alertmanager

system-packages: ## Install the Debian packages the tests use (chromium, nginx, podman, registry, prometheus, ...)
	@missing=$$(for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> apt-get install" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The manifest Airflow renders the dbt DAG from (an image bakes it in the same
# way), so parsing a DAG never runs dbt. `dbt parse` needs no warehouse.
DBT_MANIFEST := dbt-repo/target/manifest.json
DBT_FILES := dbt-repo/dbt_project.yml dbt-repo/profiles.yml \
	$(shell find dbt-repo/models dbt-repo/macros dbt-repo/tests -name '*.sql' -o -name '*.yml' 2>/dev/null)

$(DBT_MANIFEST): dbt-repo/.venv/.synced $(DBT_FILES)
	@echo "==> dbt manifest ($@)"
	@cd dbt-repo && scratch=$$(mktemp -d) && DBT_DUCKDB_PATH=$$scratch/parse.duckdb DBT_LOG_PATH=$$scratch \
	  .venv/bin/dbt parse --quiet --target-path target --profiles-dir . && rm -rf $$scratch

setup: .venv/.synced $(SUBPROJECTS:%=%/.venv/.synced) $(EMULATORS:%=%/.venv/.synced) $(DBT_MANIFEST) ## Create every environment from the lock files

# Every lock carries the sha256 of each file it allows: environments and images install
# with --require-hashes, so a re-published or tampered package fails the install.
LOCK := pip compile -q --python-version 3.11 --generate-hashes

lock: .venv/.synced ## Re-resolve every lock file, with hashes (after changing a pyproject)
	echo "uv==$(UV_VERSION)" | $(UV) $(LOCK) - -o requirements-bootstrap.lock
	$(UV) $(LOCK) requirements-dev.in -o requirements-dev.lock
	for p in $(SUBPROJECTS); do (cd $$p \
	  && ../$(UV) $(LOCK) pyproject.toml -o requirements.lock \
	  && ../$(UV) $(LOCK) --group dev pyproject.toml -o requirements-dev.lock); done
	for e in $(EMULATORS); do (cd $$e && $(CURDIR)/$(UV) $(LOCK) --group dev pyproject.toml -o requirements-dev.lock); done

# --- images -------------------------------------------------------------------

# The images from the committed Dockerfiles, with podman. Where the public
# bases cannot be pulled it builds stand-ins once (tools/images.py says how);
# podman's layer cache makes a run without changes take seconds.
images: setup system-packages ## Build the scripts, dbt, Airflow and Superset images (podman); prints sizes and build times
	.venv/bin/python tools/images.py build

# After a merge the release workflow pushes each image, records its digest and
# promotes it to sandbox. This does the same against Debian's docker-registry on
# 127.0.0.1, in a scratch clone (.release-local/repository), never this checkout.
release-local: images ## Push the images to a local registry and promote their digests to sandbox in a scratch clone
	.venv/bin/python tools/release_local.py --skip-build

# --- the main job -------------------------------------------------------------

demo: setup ## Generate events and run the whole pipeline through a real Airflow DAG run
	@tools/demo.sh

# `make up ENV=sandbox` runs that environment from what it pins: the images
# pushed and promoted by release-local, every task in a container by digest.
# Only ENV given on the command line counts (sh reads an ENV variable of its own).
STACK_ENV := $(if $(filter command line,$(origin ENV)),$(ENV))

up: setup system-packages $(if $(STACK_ENV),release-local) ## Start a working local platform behind the viewer (ENV=sandbox: in containers, from what it pins): https://127.0.0.1:8443
	@STACK_ENV=$(STACK_ENV) tools/stack.sh up

down: ## Stop what `make up` started (the whole process group)
	@tools/stack.sh down

# --- tests --------------------------------------------------------------------

RESULTS := $(CURDIR)/.test-results

# The images build (minutes, cold) and dbt-repo's suite (the longest, about 16
# minutes) start in the background at once, while the lint hooks and the other two
# suites run one after another (each is mostly one process); dbt's output is
# printed whole when it ends. test-e2e, which tests the images, starts once all
# are done. `setup` ran before, so the two makes share no step still to run.
test: setup system-packages ## Run every test: the lint hooks, each subproject's tests, the images, the whole pipeline
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@failed=; echo "==> images, then test-dbt and test-bi, in the background ($(RESULTS)/images.log, dbt.log)"; \
	.venv/bin/python tools/images.py build >$(RESULTS)/images.log 2>&1 & images=$$!; \
	$(MAKE) --no-print-directory -k test-dbt test-bi >$(RESULTS)/dbt.log 2>&1 & dbt=$$!; \
	trap 'kill $$images $$dbt 2>/dev/null || true' EXIT; \
	$(MAKE) --no-print-directory -k lint test-scripts test-airflow test-platform || failed=yes; \
	wait $$dbt || failed=yes; cat $(RESULTS)/dbt.log; \
	wait $$images || { tail -40 $(RESULTS)/images.log; echo "images: the build failed" >&2; exit 1; }; \
	trap - EXIT; tail -4 $(RESULTS)/images.log; \
	$(MAKE) --no-print-directory test-e2e || failed=yes; \
	.venv/bin/python tools/test_report.py $(RESULTS) || failed=yes; \
	if [ -n "$$failed" ]; then echo "make test: FAILED (the lint or a suite, above)" >&2; exit 1; fi

test-scripts: scripts-repo/.venv/.synced tools/fakesnow/.venv/.synced ## scripts-repo tests
	cd scripts-repo && .venv/bin/python -m pytest --junitxml=$(RESULTS)/scripts.xml

test-dbt: dbt-repo/.venv/.synced tools/fakesnow/.venv/.synced system-packages ## dbt-repo tests: DuckDB and PostgreSQL builds, unit tests, BigQuery compile, dashboard in Chromium
	cd dbt-repo && TEST_ARTIFACTS_DIR=$(RESULTS) .venv/bin/python -m pytest --junitxml=$(RESULTS)/dbt.xml

test-airflow: airflow-repo/.venv/.synced ## airflow-repo tests (DagBag integrity, runner, metadata DB)
	cd airflow-repo && .venv/bin/python -m pytest --junitxml=$(RESULTS)/airflow.xml

# Superset reads analytics tables dbt-repo's project builds (dbt-repo's venv and manifest).
test-bi: bi-repo/.venv/.synced dbt-repo/.venv/.synced $(DBT_MANIFEST) ## bi-repo tests: Superset with the dashboards as code, imported, exported, its numbers against the warehouse
	cd bi-repo && .venv/bin/python -m pytest --junitxml=$(RESULTS)/bi.xml

test-platform: .venv/.synced system-packages ## Deployment config: platform chart (Helm SDK + kubernetes-validate), nginx -t, schemas, workflow lint, promotion tool
	.venv/bin/python -m pytest -m platform --junitxml=$(RESULTS)/platform.xml

# Two workers, one test module each at a time (a module's tests share its
# fixtures): the DAG runs are chains of single-threaded processes, so two of
# them keep both cores busy.
test-e2e: setup system-packages images ## Real DAG runs: the demo, backfill, image refresh, stream, maintenance; the local stack behind the viewer
	TEST_ARTIFACTS_DIR=$(RESULTS) .venv/bin/python -m pytest -m e2e -n 2 --dist loadscope --no-loadscope-reorder --junitxml=$(RESULTS)/e2e.xml

lint: setup ## pre-commit on every file (ruff, sqlfluff, yamllint, detect-secrets), then mypy per subproject
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/pre-commit run --all-files --show-diff-on-failure
	@$(MAKE) --no-print-directory typecheck

typecheck: setup ## mypy in each subproject's own environment (its [tool.mypy] says what ships)
	for p in $(SUBPROJECTS); do echo "==> mypy $$p"; (cd $$p && .venv/bin/mypy) || exit 1; done

# --- benchmarks ---------------------------------------------------------------

BENCH_ARGS ?=

bench: setup ## Measure throughput against baselines in one run: a Markdown table, JSON in bench/results/
	.venv/bin/python bench/run.py $(BENCH_ARGS)

clean: ## Remove everything a demo or a test wrote (not the environments)
	rm -rf .demo .stack .test-results .release-local dbt-repo/target dbt-repo/logs
