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
MAX_BATCH ?= 8
CALIB ?=

.PHONY: help venv test test-gpu lint demo info export clean

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

# make export: ONNX for each model, then (where TensorRT is installed) an FP16 engine and, where the GPU has fast
# INT8 and CALIB is given (e.g. CALIB="--calib-images DIR"), an INT8 engine; the reason is printed when skipped.
export: venv
	@if [ -n "$(WEIGHTS)" ] && [ $(words $(MODELS)) -ne 1 ]; then \
		echo "make export: WEIGHTS=$(WEIGHTS) needs exactly one model, e.g. make export MODELS=goatpose-bl WEIGHTS=$(WEIGHTS)"; \
		exit 2; fi
	@for model in $(MODELS); do \
		onnx=$$($(BIN)/python -c "from goatpose_edge.export import default_output_path; from goatpose_edge.variants import get_variant; print(default_output_path(get_variant('$$model').contract))"); \
		$(BIN)/goatpose export $$model $(if $(WEIGHTS),--weights $(WEIGHTS)) --opset $(OPSET) -o $$onnx $(EXPORT_FLAGS) || exit 1; \
		if ! $(BIN)/python -c "import tensorrt, pycuda.driver" 2>/dev/null; then \
			echo "engines skipped: TensorRT and pycuda are not installed here (ONNX only)"; continue; fi; \
		$(BIN)/goatpose build $$onnx --precision fp16 --max-batch $(MAX_BATCH) --timing-cache engines/timing.cache || exit 1; \
		if ! $(BIN)/goatpose platform --require int8 >/dev/null 2>engines/.int8-skip; then \
			echo "INT8 skipped: $$(sed 's/^goatpose: error: //' engines/.int8-skip)"; \
		elif [ -z "$(CALIB)" ]; then echo "INT8 skipped: no calibration images (CALIB=\"--calib-images DIR\")"; \
		else $(BIN)/goatpose build $$onnx --precision int8 $(CALIB) --max-batch $(MAX_BATCH) \
			--timing-cache engines/timing.cache || exit 1; fi; \
	done

test-gpu: venv
	$(BIN)/python -m pytest -q -m gpu -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache
