# radscreen: `make demo` runs the main job on embedded demo data, `make test` runs the linter and the tests.
# Both create the virtual environment on first use (`make install`: pip install -e '.[dev]'). pip picks torch and
# torchvision within pyproject.toml's ranges; to train on a GPU, install the CUDA build of torch that matches your
# driver into $(VENV) first (https://pytorch.org) and `make install` keeps it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The stamp names pyproject.toml and this checkout: a venv shared by several clones (CI's cache) is re-pointed at
# the clone that runs, since the editable install imports radscreen from the folder that installed it.
STAMP := $(VENV)/.installed-$(shell { cat pyproject.toml; pwd; } | sha256sum | cut -c1-12)
PYTEST_WORKERS ?= 2
export RADSCREEN_SALT ?= radscreen-demo-salt

.PHONY: install test demo lint clean-cache bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# One BLAS/OpenMP thread per test worker (override with OMP_NUM_THREADS=N): two workers that each start as many
# threads as there are cores, plus their loader workers and train.py subprocesses, slow the suite by a third.
test: install lint
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/python -m ruff check src scripts tests benchmarks train.py eval.py predict.py export.py setup.py

demo: install
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_preprocess.py
	$(BIN)/python benchmarks/bench_cache_build.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_manifest_scan.py
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_training_overhead.py

clean-cache:
	rm -rf cache outputs multirun
