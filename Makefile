# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TFDS_DATA_DIR ?= $(CURDIR)/data/tensorflow_datasets
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: venv demo test docs lint format clean

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
	$(BIN)/python -m pytest -q -n auto --dist loadfile
	$(BIN)/mkdocs build --strict --quiet

# The documentation site (docs/ + mkdocs.yml) into site/; `mkdocs serve` previews it.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

format: $(STAMP)
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) data build site *.egg-info .pytest_cache .ruff_cache
