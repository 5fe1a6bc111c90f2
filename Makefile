# The front door. Each target works from a fresh clone on Debian with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
UV_VERSION := 0.13.9
UV := .cache/uv/bin/uv
AXE_VERSION := 4.14.1
AXE := .cache/browser-tests/node_modules/axe-core/axe.min.js

.PHONY: run test openapi lint bench clean

# uv resolves, downloads and installs in parallel, and builds pdqhash (no wheel on PyPI) while the rest
# downloads: a cold install takes a third of pip's CPU. It comes from PyPI into .cache/, out of the venv.
$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target .cache/uv uv==$(UV_VERSION)

# The service alone, for `make run`; the test suite's tools come on top, for everything else.
# The venv is seeded with pip, for whoever adds a tool by hand.
$(RUNTIME): pyproject.toml | $(UV)
	./scripts/ensure-system-packages.sh --build
	test -x $(BIN)/python || $(UV) venv --quiet --seed --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $(RUNTIME)

# The tests also cover video matching, so they take the optional `video` extra (vpdq, built against FFmpeg).
$(STAMP): $(RUNTIME)
	./scripts/ensure-system-packages.sh --video
	$(UV) pip install --quiet --python $(BIN)/python -e '.[test,video]'
	touch $(STAMP)

## run: set up and serve on 127.0.0.1:$(PORT) with the embedded defaults (SQLite and files under var/);
## a development setup: the link secret is made once and kept in var/link-secret
run: $(RUNTIME)
	./scripts/ensure-system-packages.sh
	INTAKE_DEVELOPMENT=true INTAKE_DATA_DIR=$(CURDIR)/var $(BIN)/intake serve --host 127.0.0.1 --port $(PORT)

## test: set up and run the whole suite: SQLite and a real PostgreSQL, S3 over HTTP, Redis, headless Chromium
test: $(STAMP) $(AXE)
	./scripts/ensure-system-packages.sh --postgres --browser --redis
	$(BIN)/pytest

# The accessibility checker the browser tests inject into the report form's pages.
$(AXE):
	npm install --silent --no-audit --no-fund --prefix .cache/browser-tests axe-core@$(AXE_VERSION)

## openapi: write the served OpenAPI document to openapi/openapi.json, and the settings table to docs/settings.md
openapi: $(STAMP)
	$(BIN)/python -m service.openapi > openapi/openapi.json
	$(BIN)/python -m service.configuration > docs/settings.md

## lint: ruff (style, imports, security, complexity at most 10) and the dead-code check (vulture)
lint: $(STAMP)
	$(BIN)/ruff check service tests devsupport bench migrations
	$(BIN)/python -m devsupport.dead_code

## bench: every benchmark (loads, upload, export) and one table of ratios against same-run baselines
bench: $(STAMP)
	./scripts/ensure-system-packages.sh --postgres --wrk --redis
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) var .pytest_cache .cache
