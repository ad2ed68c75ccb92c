# Two commands do all set-up (see README):
#   make run   – create .venv, install Lodestar, open the window
#   make test  – create .venv, install Lodestar with test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# PyPI's torch for Linux is the CUDA build (torch + nvidia-* + triton, about 5.3 GB).
# On a machine without an NVIDIA GPU, `make run TORCH=cpu` takes PyTorch's CPU build
# from PyTorch's own package index instead (about 0.8 GB; README "What the install downloads").
TORCH  ?= default
ifeq ($(TORCH),cpu)
TORCH_INDEX = --index-url https://download.pytorch.org/whl/cpu
endif

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch/torchvision are pinned to a pair that imports together on CPU and CUDA.
	$(PIP) install --quiet $(TORCH_INDEX) "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/lodestar

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
