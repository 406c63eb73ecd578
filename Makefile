# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates the virtual environment it needs in .venv (PyTorch's CPU build first, so
# pip does not pull the multi-gigabyte CUDA one), then builds sktdtw's compiled core.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.sktdtw-installed

.PHONY: demo test lint bench clean

# sktdtw/__init__.py holds the version, which the install writes into the metadata.
$(STAMP): pyproject.toml CMakeLists.txt sktdtw/__init__.py $(wildcard src_cuda/*)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,plot]"
	touch $@

demo: $(STAMP)
	$(PY) -m sktdtw demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench_dtw.py

clean:
	rm -rf build $(VENV) sktdtw/_core*.so
