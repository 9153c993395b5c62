# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TFDS_DATA_DIR ?= $(CURDIR)/data/tensorflow_datasets

.PHONY: venv demo test lint format clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/spectrazoo demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) data build *.egg-info .pytest_cache .ruff_cache
