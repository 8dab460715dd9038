# The README's commands. `make run` and `make test` each install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: install run test lint bench bench-load sample clean

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

bench: install
	$(BIN)/python scripts/bench_sgd.py

bench-load: install
	$(BIN)/python scripts/bench_load.py

sample: install
	$(BIN)/python scripts/make_sample.py

clean:
	rm -rf $(OUT) .pytest_cache
