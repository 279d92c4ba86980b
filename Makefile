# goatpose-edge: every target creates what it needs (virtualenv, installs) on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv test lint demo info clean

help:
	@echo "make demo   - the main job on the embedded default (currently: model table, goatpose info --all)"
	@echo "make test   - lint for Python 3.6 (vermin) and run the test suite"
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

clean:
	rm -rf $(VENV) .pytest_cache
