# Two commands on a fresh machine:
#   make demo   set up .venv, install ganforge, train the demo preset on the embedded MNIST subset
#   make test   set up .venv, install ganforge with its test extra, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU wheel by default: an unpinned `torch` would pull a multi-GB CUDA build. Users with a GPU:
#   make demo TORCH_SPEC=torch   (or install the torch build for your CUDA first)
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test test-fast install clean

$(BIN)/ganforge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	@touch $@

install: $(BIN)/ganforge

demo: install
	$(BIN)/ganforge train configs/demo.yaml

test: install
	$(BIN)/python -m pytest -q

test-fast: install   # no torchrun, subprocess, torch.compile or over-a-second tests
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs build src/*.egg-info .pytest_cache
