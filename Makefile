# make run   — create .venv, install netsim (the core: no PyTorch, no test tools), run the default scenario
# make test  — create .venv, install netsim with every extra (train: PyTorch's CPU build, dask, test tools),
#              then the test suite
# make bench — as make test, then the speed benchmarks (they print figures, never assert)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CORE := $(VENV)/.installed-core
ALL := $(VENV)/.installed-all

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

run: $(CORE)
	$(VENV)/bin/netsim run -o out/run

test: $(ALL)
	$(PY) -m pytest

bench: $(ALL)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out .pytest_cache
