# sharehub — the two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
STAMP  := $(VENV)/.installed
# pytest-xdist workers (one test module per worker at a time); WORKERS=0 runs in this process
WORKERS ?= auto

.PHONY: demo test bench lint typecheck venv clean screenshots

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sharehub demo $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check sharehub connectors lake quality catalog dags tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --durations=40 $(ARGS)

# benchmarks B1-B12 against their baselines, each measured in the same run (full sizes; ARGS=--quick for a smoke run)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

# the portal's pages as PNGs in docs/screenshots (needs Chromium, axe-core and a CJK font: see .ci/run)
screenshots: $(STAMP)
	$(BIN)/python -m tests.browser.screenshots

lint: $(STAMP)
	$(BIN)/ruff check sharehub connectors lake quality catalog dags tests benchmarks
	$(BIN)/ruff format --check sharehub connectors lake quality catalog dags tests || true
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
