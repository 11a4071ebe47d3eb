# Two entry points for users and CI:  `make demo`  and  `make test`.
# Both create or refresh the local virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

# torch first (CPU build from the local wheel), then every dependency pinned by envs/constraints.txt.
$(STAMP): pyproject.toml envs/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c envs/constraints.txt -e ".[workflow,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_binning.py

clean:
	rm -rf results logs .snakemake
