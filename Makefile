# goatpose-edge: every target creates what it needs (virtualenv, installs) on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# make export: which models, optional weights (one model only), opset and extra flags for `goatpose export`.
MODELS  ?= goatpose-bl hrnet-w32
WEIGHTS ?=
OPSET   ?= 13
EXPORT_FLAGS ?=

.PHONY: help venv test lint demo info export clean

help:
	@echo "make demo   - the main job on the embedded default (currently: model table, goatpose info --all)"
	@echo "make test   - lint for Python 3.6 (vermin) and run the test suite"
	@echo "make export - ONNX for MODELS (default: $(MODELS)) into export/; WEIGHTS=ckpt.pth with one model"
	@echo "make venv   - create $(VENV) and install the project with its host and dev extras"

# Development install: torch pinned to the local CPU wheel (constraints-dev.txt).
$(STAMP): pyproject.toml constraints-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints-dev.txt -e '.[host,dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/vermin -q --no-tips --target=3.6- --violations --eval-annotations --backport dataclasses goatpose_edge

test: lint
	$(BIN)/python -m pytest -q

info demo: venv
	$(BIN)/goatpose info --all

export: venv
	@if [ -n "$(WEIGHTS)" ] && [ $(words $(MODELS)) -ne 1 ]; then \
		echo "make export: WEIGHTS=$(WEIGHTS) needs exactly one model, e.g. make export MODELS=goatpose-bl WEIGHTS=$(WEIGHTS)"; \
		exit 2; fi
	@for model in $(MODELS); do \
		$(BIN)/goatpose export $$model $(if $(WEIGHTS),--weights $(WEIGHTS)) --opset $(OPSET) $(EXPORT_FLAGS) || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache
