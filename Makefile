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

# make demo / make bench: what is benchmarked and how. VIDEO is used when the file exists.
HRNET_WEIGHTS ?=
VIDEO ?= ../shared/data/video/pedestrians_overhead.avi
BENCH_FLAGS ?= --batch 1,8 --warmup 2 --iters 10
VIDEO_FRAMES ?= 10
BENCH_OUT ?= benchmarks/$(shell uname -m)-$(shell hostname -s)

.PHONY: help venv demo-poses test test-deps-broker test-deps-browser test-py36 test-gpu check-deps lint demo info export bench video clean docker-l4t jetson-info

help:
	@echo "make demo   - export GoatPose-BL and HRNet-W32 (random weights unless WEIGHTS= / HRNET_WEIGHTS=), build"
	@echo "              their FP16 engines where TensorRT is installed, benchmark them side by side"
	@echo "make bench  - goatpose bench on the exported MODELS (and their newest FP16 engines) into BENCH_OUT"
	@echo "make video IN=file|0|csi://0 [OUT=out.mp4] - pose on a video with the newest GoatPose-BL engine (else ONNX)"
	@echo "make test   - lint for Python 3.6 (vermin), run the test suite, and the device tests under Python 3.6"
	@echo "make export - ONNX for MODELS (default: $(MODELS)) into export/; WEIGHTS=ckpt.pth with one model"
	@echo "make venv   - create $(VENV) and install the project (host + dev extras; device requirements on a Jetson)"
	@echo "make check-deps  - resolve the Jetson pins for Python 3.6 aarch64 on the package index (needs network)"
	@echo "make jetson-info - L4T release, power mode, clocks, TensorRT version, GPU, fast FP16/INT8"
	@echo "make docker-l4t  - build the JetPack 4.6 (L4T R32.7.1) image from Dockerfile.l4t"

# On a Jetson (L4T): a venv that sees JetPack's TensorRT and OpenCV (--system-site-packages), the device
# requirements for Python 3.6 aarch64 and pycuda built against CUDA 10.2; no torch (export ONNX on the host).
# Elsewhere, the development install: torch pinned to the local CPU wheel (constraints-dev.txt).
ON_JETSON := $(shell test -f /etc/nv_tegra_release && echo yes)
ifeq ($(ON_JETSON),yes)
$(STAMP): pyproject.toml requirements-jetson.txt requirements-jetson-build.txt
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -m pip install -q pip==21.3.1
	PATH=/usr/local/cuda/bin:$$PATH $(BIN)/python -m pip install -q -r requirements-jetson.txt \
		-r requirements-jetson-build.txt pytest==7.0.1
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)
else
$(STAMP): pyproject.toml constraints-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints-dev.txt -e '.[host,dev]'
	touch $(STAMP)
endif

venv: $(STAMP)

lint: venv
	$(BIN)/vermin -q --no-tips --target=3.6- --violations --eval-annotations --backport dataclasses goatpose_edge

# The suite in TEST_WORKERS processes (pytest-xdist), a test file per process so each file's session exports are
# made once; one BLAS/OpenMP thread per process (torch's default of one thread per core in every process thrashes:
# measured 12:25 with it against 4:30 without on 2 cores; one process, as before, took 10:30).
TEST_WORKERS ?= auto
test: lint test-deps-broker test-deps-browser
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile
	@$(MAKE) --no-print-directory test-py36

# The MQTT tests start a real Mosquitto on loopback: installed here where it is missing and we are root (CI); else
# those tests skip with one line naming the Debian package.
test-deps-broker:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >/dev/null || \
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >/dev/null; }; \
		else echo "mosquitto not installed and not root: the MQTT tests will skip (apt-get install mosquitto)"; fi; fi

# The browser tests (the live view, tests/video/test_live_view.py; the fleet dashboard, tests/mqtt/test_dashboard.py,
# among DEVICE_TESTS through tests/mqtt) drive Debian's Chromium headless through its chromium-driver: installed here
# where it is missing and we are root (CI); else those tests skip with one line.
test-deps-browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null || \
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
		else echo "chromium not installed and not root: the browser tests will skip (apt-get install chromium chromium-driver)"; fi; fi

# The device side under Python 3.6 (the TX2's JetPack 4.6 interpreter): a second venv with the device pins
# (requirements-device-test.txt), the package without extras, and the tests of what runs on the device: codec,
# detection, runners, pipeline, video and bench on a stand-in pose ONNX, the TensorRT builder and runner under the
# 8.0.1 / 8.2.1 fakes with the TX2 platform. Skipped with one line where no Python 3.6 is found.
PY36 ?= $(shell p="$$(pyenv root 2>/dev/null)/versions/3.6.15/bin/python"; if [ -x "$$p" ]; then echo "$$p"; \
	else command -v python3.6 2>/dev/null; fi)
VENV36 ?= .venv36
STAMP36 := $(VENV36)/.installed-stamp
DEVICE_TESTS = tests/codec/test_flip_crop.py tests/codec/test_heatmap.py tests/codec/test_oks.py tests/codec/test_transforms.py tests/detection \
	tests/video/test_capture.py tests/video/test_odd_inputs.py tests/video/test_outputs.py tests/video/test_sources.py \
	tests/video/test_tracking.py tests/video/test_engine.py tests/video/test_app_signals.py tests/video/test_sinks.py tests/video/test_live_view.py tests/video/test_video_guards.py tests/video/test_smoothing.py tests/mqtt/test_spool.py tests/mqtt/test_publish.py tests/mqtt/test_listen.py tests/synthetic tests/engines/test_calibration.py tests/engines/test_policy_sidecar.py \
	tests/engines/test_static_batch.py tests/engines/test_trt_failures.py tests/engines/test_trtfake.py tests/engines/test_trt_stream.py \
	tests/bench/test_env.py tests/bench/test_report.py tests/bench/test_timing.py tests/artefact/test_contract.py \
	tests/test_imagefile.py tests/test_io_guard.py tests/artefact/test_onnx_meta.py tests/test_device_path.py \
	tests/test_sigterm.py tests/runtime/test_runner_contract.py tests/engines/test_build_steps.py tests/test_compare.py \
	tests/test_pose_images.py tests/cli/test_build.py tests/engines/test_detector_engine.py

$(STAMP36): pyproject.toml requirements-device-test.txt
	test -x $(VENV36)/bin/python || $(PY36) -m venv $(VENV36)
	$(VENV36)/bin/python -m pip install -q pip==21.3.1
	$(VENV36)/bin/python -m pip install -q -r requirements-device-test.txt
	$(VENV36)/bin/python -m pip install -q -e .
	touch $(STAMP36)

test-py36:
	@if [ -z "$(PY36)" ]; then echo "test-py36 skipped: no Python 3.6 here (pyenv install 3.6.15 to run the device tests)"; \
	else $(MAKE) --no-print-directory $(STAMP36) && \
		OMP_NUM_THREADS=1 $(VENV36)/bin/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
		$(DEVICE_TESTS); fi

info: venv
	$(BIN)/goatpose info --all

# The default ONNX path of a model (export/<model>_<H>x<W>.onnx), torch-free so it works on a device too.
ONNX_OF = $(BIN)/python -c "import sys; from goatpose_edge.export import default_output_path; from goatpose_edge.variants import get_variant; print(default_output_path(get_variant(sys.argv[1]).contract))"

# The artefacts of MODELS: each ONNX from `make export`, plus its newest FP16 engine when one was built here.
ARTEFACTS = for model in $(MODELS); do \
		onnx=$$($(ONNX_OF) $$model); \
		artefacts="$$artefacts $$onnx"; \
		engine=$$(ls -t engines/$$(basename $$onnx .onnx)_fp16_*.engine 2>/dev/null | head -1); \
		if [ -n "$$engine" ]; then artefacts="$$artefacts $$engine"; fi; \
	done

demo: venv
	@$(MAKE) --no-print-directory export MODELS=goatpose-bl WEIGHTS="$(WEIGHTS)"
	@$(MAKE) --no-print-directory export MODELS=hrnet-w32 WEIGHTS="$(HRNET_WEIGHTS)"
	@$(MAKE) --no-print-directory bench MODELS="goatpose-bl hrnet-w32" BENCH_OUT=runs/demo/bench
	@if [ -z "$(WEIGHTS)" ] || [ -z "$(HRNET_WEIGHTS)" ]; then \
		echo "!!! RANDOM WEIGHTS were exported (WEIGHTS=goatpose-bl.pth / HRNET_WEIGHTS=pose_hrnet_w32_256x192.pth"; \
		echo "!!! not given): the speed numbers above are real, the poses would be noise."; fi
	@$(MAKE) --no-print-directory demo-poses

# The whole video pipeline with something to look at: a synthetic scene of walking figures (colour-coded joints,
# 2 px of jitter) through the dot-finding pose model and the figure detector, tracked and smoothed, scored against
# the scene's truth; with HRNET_WEIGHTS, a real overlay of the pedestrian video too.
DEMO_DIR ?= runs/demo
demo-poses: venv
	@mkdir -p $(DEMO_DIR)
	@$(BIN)/python -m goatpose_edge.synthetic scene $(DEMO_DIR)/walkers.avi --preset walkers --frames 150 \
		--jitter 2 --seed 1 >/dev/null
	@$(BIN)/python -m goatpose_edge.synthetic dotpose $(DEMO_DIR)/dotpose.onnx >/dev/null
	@echo "== poses on a synthetic scene (the dot model finds the figures' coloured joints: real skeletons, known truth)"
	@$(BIN)/goatpose video $(DEMO_DIR)/walkers.avi --pose $(DEMO_DIR)/dotpose.onnx --detector figures --smooth \
		--post-process dark -o $(DEMO_DIR)/walkers_poses.mp4 --jsonl $(DEMO_DIR)/walkers_poses.jsonl --no-progress
	@$(BIN)/python -m goatpose_edge.synthetic score $(DEMO_DIR)/walkers_poses.jsonl \
		$(DEMO_DIR)/walkers.truth.jsonl --line
	@if [ -n "$(HRNET_WEIGHTS)" ] && [ -f "$(VIDEO)" ]; then \
		$(BIN)/goatpose video $(VIDEO) --pose $$($(ONNX_OF) hrnet-w32) --detector hog --max-frames 60 \
			-o $(DEMO_DIR)/pedestrians_hrnet.mp4 --jsonl $(DEMO_DIR)/pedestrians_hrnet.jsonl --no-progress; fi
	@echo ""
	@echo "Look at: $(DEMO_DIR)/walkers_poses.mp4 (the overlay), $(DEMO_DIR)/walkers_poses.jsonl (header + a record per frame),"
	@echo "         runs/demo/bench.md (the benchmark: which model was faster, by how much, how noisy the machine was)"
	@if [ -n "$(HRNET_WEIGHTS)" ] && [ -f "$(VIDEO)" ]; then \
		echo "         $(DEMO_DIR)/pedestrians_hrnet.mp4 (HRNet-W32 with the official weights on the pedestrian video)"; fi
	@echo "Next:"
	@echo "  real poses   make demo HRNET_WEIGHTS=hrnet_w32_coco_256x192-c78dce93_20200708.pth (mmpose's HRNet-W32)"
	@echo "  a video      goatpose video in.mp4 --pose export/hrnet-w32_256x192.onnx -o out.mp4 --jsonl out.jsonl"
	@echo "  a camera     goatpose video 0 --pose ... --show   (csi://0 on a Jetson; --serve 8080 for a browser view)"
	@echo "  a detector   a YOLO instead of HOG: README 'A detector worth using' (goatpose build yolov8n.onnx on the device)"
	@echo "  a TX2        README 'On a Jetson TX2': export here, make export on the TX2 builds the FP16 engine"

# make video: the newest FP16 engine of POSE_MODEL if one was built here, else its ONNX (make export first).
IN ?=
OUT ?= runs/video/out.mp4
POSE_MODEL ?= goatpose-bl
VIDEO_FLAGS ?=
video: MODELS = $(POSE_MODEL)
video: venv
	@if [ -z "$(IN)" ]; then echo "make video: give IN=file.mp4, IN=0 (camera) or IN=csi://0"; exit 2; fi
	@artefacts=""; $(ARTEFACTS); pose=$$(echo $$artefacts | tr ' ' '\n' | tail -1); \
	[ -f "$$pose" ] || { echo "make video: $$pose is missing: run make export MODELS=$(POSE_MODEL) first"; exit 2; }; \
	mkdir -p $(dir $(OUT)); \
	$(BIN)/goatpose video "$(IN)" --pose $$pose -o $(OUT) --jsonl $(basename $(OUT)).jsonl $(VIDEO_FLAGS)

bench: venv
	@artefacts=""; $(ARTEFACTS); \
	for a in $$artefacts; do [ -f "$$a" ] || { echo "make bench: $$a is missing: run make export first"; exit 2; }; done; \
	mkdir -p $(dir $(BENCH_OUT)); \
	$(BIN)/goatpose bench $$artefacts $(BENCH_FLAGS) $(if $(wildcard $(VIDEO)),--video $(VIDEO) --max-frames $(VIDEO_FRAMES)) --out $(BENCH_OUT)

# make export: ONNX for each model, then (where TensorRT is installed) an FP16 engine and, where the GPU has fast
# INT8 and CALIB is given (e.g. CALIB="--calib-images DIR"), an INT8 engine; the reason is printed when skipped.
export: venv
	@if [ -n "$(WEIGHTS)" ] && [ $(words $(MODELS)) -ne 1 ]; then \
		echo "make export: WEIGHTS=$(WEIGHTS) needs exactly one model, e.g. make export MODELS=goatpose-bl WEIGHTS=$(WEIGHTS)"; \
		exit 2; fi
	@for model in $(MODELS); do \
		onnx=$$($(ONNX_OF) $$model); \
		if [ -f "$$onnx" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
			echo "using $$onnx (no PyTorch here: exported on the host)"; \
		else $(BIN)/goatpose export $$model $(if $(WEIGHTS),--weights $(WEIGHTS)) --opset $(OPSET) -o $$onnx \
			$(EXPORT_FLAGS) || { echo "make export: on a device without PyTorch, run make export on the host and copy export/*.onnx here"; exit 1; }; fi; \
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
	$(BIN)/python -m pytest -q -m gpu -p no:cacheprovider tests/engines/test_gpu.py

L4T_TAG ?= r32.7.1
docker-l4t:
	docker build -f Dockerfile.l4t -t goatpose-edge:l4t-$(L4T_TAG) --build-arg BASE_IMAGE=nvcr.io/nvidia/l4t-base:$(L4T_TAG) .
	@echo "run: docker run --rm -it --runtime nvidia --network host --device /dev/video0 \\"
	@echo "       -v /tmp/argus_socket:/tmp/argus_socket -v \$$PWD/export:/app/export -v \$$PWD/engines:/app/engines \\"
	@echo "       -v \$$PWD/benchmarks:/app/benchmarks goatpose-edge:l4t-$(L4T_TAG) env"

# The pins of requirements-jetson*.txt resolve for Python 3.6 aarch64 (wheels) and as sources (pycuda): it reaches
# the package index, so it is not part of make test (the suite runs offline).
check-deps: venv
	$(BIN)/python -m pytest -q -m registry tests/test_jetson.py

jetson-info: venv
	$(BIN)/goatpose env

clean:
	rm -rf $(VENV) .pytest_cache
