# cgpredict developer entry points. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# torch/torchvision are pinned: matching wheels lie on the build machines' disk (no multi-GB download).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
export CGPREDICT_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test test-all bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -e ".[dev]" $(TORCH_PINS)
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m cgpredict.demo

test: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

test-all: install
	CGPREDICT_SLOW=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

clean:
	rm -rf $(VENV) build *.egg-info
