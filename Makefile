# make run   — create .venv, install netsim (the core: no PyTorch, no test tools), run the default scenario
# make test  — create .venv, install netsim with every extra (train: PyTorch's CPU build, dask, test tools),
#              then the test suite
# make bench — as make test, then the speed benchmarks (they print figures, never assert)
# Each installs, then compiles netsim's numba kernels into their cache (python -m netsim.cli.warm, again after a
# kernel file changes): a first run then starts at once instead of compiling for some 10 s.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.installed-core
ALL := $(VENV)/.installed-all
WARM := $(VENV)/.warmed
KERNELS := $(shell grep -rl --include='*.py' '@njit' netsim)

.PHONY: run test bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $(CORE)

$(ALL): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,train,dask]'
	touch $(CORE) $(ALL)

$(WARM): $(CORE) $(KERNELS) netsim/cli/warm.py
	$(PY) -m netsim.cli.warm
	touch $(WARM)

run: $(CORE) $(WARM)
	$(VENV)/bin/netsim run -o out/run

test: $(ALL) $(WARM)
	$(PY) -m pytest

bench: $(ALL) $(WARM)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache
