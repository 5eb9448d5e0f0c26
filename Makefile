# Two commands for a fresh machine:  `make demo` (set up + upscale/benchmark the bundled Set5)
# and `make test` (set up + lint + tests). Both create .venv and install torch's CPU build first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
EXTRAS ?= dev,faces,deploy,app,browser,ray,video
STAMP := $(VENV)/.srkit-installed

.PHONY: setup demo test test-fast lint format bench-speed screenshot clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The bundled Set5 butterfly through srkit's default x4 model: demo/butterfly_x4_*.png and the
# side-by-side demo/butterfly_x4_compare.png; then the Set5 table of the default models vs bicubic.
demo: setup
	$(BIN)/srkit compare -o demo
	$(BIN)/srkit bench --model default bicubic --scale 2 3 4

# ruff, then the layer contract of pyproject.toml's [tool.importlinter] (no import goes upwards)
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

# The whole suite, tests marked `slow` included (the x3/x4 official-weight reproductions, the
# face-folder alignment): what CI (.ci/run) runs, about 3 minutes on 2 cores (CI's limit: 15).
# Tests marked `shared` skip, naming what is missing, where ../shared is absent.
test: lint
	$(BIN)/python -m pytest -q -n 2 -m "slow or not slow"

# The same without the `slow` tests, for quick checks while developing.
test-fast: lint
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench-speed: setup
	$(BIN)/python benchmarks/bench_eval_speed.py

# The page of `srkit serve` in headless Chromium, saved as docs/img/serve.png (docs/app.md).
screenshot: setup
	SRKIT_SCREENSHOT=docs/img/serve.png $(BIN)/python -m pytest -q tests/test_serve_browser.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache .grimp_cache demo
