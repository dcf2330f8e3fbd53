# Two commands, each setting up everything it needs in .venv:
#   make demo   generate the GRU Mastery bank into out/ in every format
#   make test   run the test suite
# TORCH selects the torch build installed before the project (a CPU build by default on this machine).

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench lint clean

setup:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet ".[test]"

demo: setup
	$(BIN)/qbank generate gru_mastery --variants 20 --seed 1 --format all --out out

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/pipeline.py --compare-jobs

clean:
	rm -rf $(VENV) out build *.egg-info
