# Two commands, each setting up everything it needs in .venv:
#   make demo   generate the GRU Mastery bank into out/ in every format
#   make test   run the test suite
# TORCH selects the torch build installed before the project (a CPU build by default on this machine).

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup system demo test bench lint clean

setup:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet ".[test]"

demo: setup
	$(BIN)/qbank generate gru_mastery --variants 20 --seed 1 --format all --out out

# The browser tests need Debian's Chromium and the exam tests poppler's pdftoppm: installed here when missing (as root,
# with apt-get); elsewhere one line says what to install, and the tests do not start.
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "make test needs$$missing: install$$missing with your package manager (as root: apt-get install$$missing), then run make test again" >&2; \
	    exit 1; \
	  fi; \
	fi

test: system setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/pipeline.py --compare-jobs

clean:
	rm -rf $(VENV) out build *.egg-info
