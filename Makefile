# The README's commands. Every target bootstraps what it needs through `setup`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-stamp
MVN     ?= mvn -q -B
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup test-servers demo test test-unit lint bench chaos clean gcs-emulator

setup: $(STAMP) jars/.stamp

# what only the tests need, beside setup (the image's `make setup` leaves it out: no Node there)
test-servers: node_modules/.stamp

# venv + pinned Python deps (the package installed editable so Flink's Python workers import it)
$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

# Java runtime artifacts resolved from Maven Central into jars/<profile>/ (ignored by git)
jars/.stamp: pom.xml
	rm -rf jars
	$(MVN) -Pflink dependency:copy-dependencies
	$(MVN) -Pkafka dependency:copy-dependencies
	$(MVN) -Pneo4j dependency:copy-dependencies
	$(MVN) -Pneo4j3 dependency:copy-dependencies
	$(MVN) -Pcassandra dependency:copy-dependencies
	@touch $@

# test servers from npm (package.json, package-lock.json): Azurite, the Azure Blob emulator of
# tests/integration/test_storage_servers.py
node_modules/.stamp: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need node and npm on PATH (Azurite, for the storage tests)"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# opt-in: fake-gcs-server for the GCS storage test (skipped without it); a fresh build fetches ~600 MB of Go
# modules (over 5 minutes here), so `setup` does not run it
gcs-emulator:
	GOBIN=$(CURDIR)/.tools go install github.com/fsouza/fake-gcs-server@v1.52.2

demo: setup
	$(BIN)/cokreat-jobs demo

test: setup test-servers
	$(BIN)/python -m pytest -q -ra tests

test-unit: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/cokreat-jobs bench

# fault-injection scenarios on a standalone Flink cluster; figures in bench/results/chaos.json
chaos: setup
	$(BIN)/cokreat-jobs chaos

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) jars .stack node_modules .tools
