# Two entry points for users and CI:  `make demo`  and  `make test`.
# Both create or refresh the local virtual environment first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2
# GPUs of this machine. Without one, every training job runs on the CPU: the demo then opens one
# training slot per core and gives each training job one thread (small models train faster side by
# side than one at a time on several threads). With GPUs, one slot per GPU (profiles/default caps 1).
GPUS   := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
ifeq ($(strip $(GPUS)),0)
RUN_FLAGS ?= --resources gpu=$(CORES) --set-threads train=1 maze_train=1
else
RUN_FLAGS ?= --resources gpu=$(GPUS)
endif

.PHONY: demo demo-full report test lint bench clean venv system-packages run-flags gpu-bundle gpu-check

venv: $(STAMP)

# torch (the CPU build from the local wheel) and every dependency pinned by envs/constraints.txt.
# umap-learn goes in first, so that its numba functions compile into their on-disk cache
# (pipeline.embed.methods.umap.compile_cache, about 90 s on one core) while the rest installs.
$(STAMP): pyproject.toml envs/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c envs/constraints.txt umap-learn
	PYTHONPATH=. $(BIN)/python -W ignore -c "from pipeline.embed.methods.umap import compile_cache; compile_cache()" & \
	compile=$$!; \
	$(BIN)/python -m pip install --quiet torch==2.13.0 && \
	$(BIN)/python -m pip install --quiet -c envs/constraints.txt -e ".[workflow,test]"; \
	installed=$$?; wait $$compile && test $$installed = 0
	touch $(STAMP)

# Debian packages of the tests (headless chromium for the report check, slurm-wlm + munge for the
# real SLURM cluster of tests/workflow/test_slurm.py), installed when missing.
system-packages:
	@missing=$$(for p in $$(grep -v '^#' envs/apt.txt); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "the report and SLURM tests will skip; to run them: sudo apt-get install $$missing" >&2; fi; \
	fi

# The whole pipeline on the built-in simulated data, ending with the HTML report (about 10 minutes
# on 2 cores). demo-full: the larger demo of config/demo_full.yaml (8 sessions; about an hour).
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(RUN_FLAGS)
	$(BIN)/snakemake --report results/report.html
	@echo "report: results/report.html"

demo-full: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(RUN_FLAGS) --configfile config/demo_full.yaml
	$(BIN)/snakemake --report results/report.html --configfile config/demo_full.yaml
	@echo "report: results/report.html"

# The flags above (the tests rerun parts of the demo with exactly these).
run-flags:
	@echo $(RUN_FLAGS)

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

# The tests on the cores (pytest-xdist, at most 4 workers), `make demo` in the background meanwhile.
# The virtual environment and the Debian packages are installed side by side.
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) system-packages
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check workflow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_binning

# The CUDA check of benchmarks/gpu_check.py. gpu-bundle (here, with the package registries): the wheels a
# lent CUDA machine's image lacks (Python 3.12, manylinux x86-64; versions of envs/constraints.txt) and the
# real session, in .gpu/ (ignored; the device tool carries it). gpu-check (there, or here on the CPU):
# install them beside the image's packages when missing, then run the check and print its table.
GPU_PYTHON ?= python3
GPU_WHEELS := zarr numcodecs donfig google-crc32c dask partd locket jsonschema jsonschema-specifications \
	referencing rpds-py cebra literate-dataclasses
gpu-bundle: $(STAMP)
	mkdir -p .gpu/wheels .gpu/data/ner_paper_preprocessed
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  -d .gpu/wheels $$(for p in $(GPU_WHEELS); do grep -i "^$$p==" envs/constraints.txt; done)
	cp ../shared/data/real/ner_paper_preprocessed/Chewie_20161007_neural_con_dis_index.mat .gpu/data/ner_paper_preprocessed/
	du -sh .gpu

gpu-check:
	@$(GPU_PYTHON) -c "import zarr, dask, jsonschema, cebra" 2>/dev/null || \
	  $(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --target .gpu/site .gpu/wheels/*.whl
	PYTHONPATH=$(CURDIR)/.gpu/site:$(CURDIR) $(GPU_PYTHON) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf results logs .snakemake
