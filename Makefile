# Two commands on a fresh machine (Python 3.11+, a C++ compiler):
#   make demo   - set up .venv, build gulm, run the embedded demo
#   make test   - set up .venv, build gulm, run the test suite
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
NVCC ?= nvcc
BUILD_DIR ?= build/cmake
CSRC := $(shell find csrc -type f 2>/dev/null)

.PHONY: all install demo test test-fast ctest nvcc-check bench ci clean

all: install

$(VENV)/.deps:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q numpy pyfaidx scikit-learn tqdm pyyaml safetensors matplotlib platformdirs \
	    pytest pytest-benchmark hypothesis ninja pybind11 cmake setuptools wheel pyBigWig
	$(PIP) install -q pysam pyarrow  # the vcf and parquet extras (variant-effect, embed --out .parquet)
	touch $@

$(VENV)/.built: $(VENV)/.deps setup.py pyproject.toml $(CSRC)
	MAX_JOBS=$${MAX_JOBS:-2} $(PIP) install -q --no-build-isolation -e .
	touch $@

install: $(VENV)/.built

demo: install
	$(VENV)/bin/gulm demo

test: install
	$(PY) -m pytest -q tests

test-fast: install
	$(PY) -m pytest -q -x tests -m "not slow"

# C++ unit tests of the torch-free kernel library
ctest: $(VENV)/.deps
	$(VENV)/bin/cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja \
	    -DGULM_BUILD_EXTENSION=OFF -DPython3_EXECUTABLE=$(abspath $(PY))
	$(VENV)/bin/cmake --build $(BUILD_DIR) -j2
	cd $(BUILD_DIR) && $(abspath $(VENV))/bin/ctest --output-on-failure

# CUDA sources must keep compiling without a GPU (kernel layer only: no torch headers)
nvcc-check:
	@mkdir -p build/nvcc
	@for f in csrc/kernels/cuda/*.cu; do \
	    [ -e "$$f" ] || continue; \
	    echo "nvcc -c $$f"; \
	    $(NVCC) -std=c++17 -O2 -Icsrc/include -arch=sm_90 -c $$f -o build/nvcc/$$(basename $$f).o || exit 1; \
	done

bench: install
	$(PY) -m pytest benchmarks --benchmark-only

ci: nvcc-check ctest test

clean:
	rm -rf build dist *.egg-info gulm/_C*.so
