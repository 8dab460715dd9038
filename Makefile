# The README's commands. `make run` and `make test` each install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: install run test lint docs bench bench-load sample wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Train on the embedded sample, evaluate on its held-out ratings, recommend for user 1.
run: install
	mkdir -p $(OUT)
	$(BIN)/recsys train data/sample.csv -o $(OUT)/sample-model.npz -p data/sample-test.csv
	$(BIN)/recsys evaluate $(OUT)/sample-model.npz data/sample-test.csv
	$(BIN)/recsys recommend $(OUT)/sample-model.npz 1 -n 5

## Install, lint, then run the whole test suite.
test: install
	$(BIN)/ruff check recsys tests scripts
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check recsys tests scripts

## Build the documentation site into site/ with warnings as errors (the dev extra holds the
## docs extra's packages; the build fetches nothing).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

bench: install
	$(BIN)/python scripts/bench_sgd.py

bench-load: install
	$(BIN)/python scripts/bench_load.py

sample: install
	$(BIN)/python scripts/make_sample.py

## Build the wheel and check it installs and runs in a fresh virtual environment.
wheel: install
	rm -rf dist build/wheel-venv
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/pip install -q dist/*.whl
	build/wheel-venv/bin/recsys --version

clean:
	rm -rf $(OUT) .pytest_cache site
