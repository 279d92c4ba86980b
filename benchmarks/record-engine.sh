#!/bin/sh
# Reproduces the streaming engine's records (run from the repository root after `make venv`; ~10 min on 2 cores).
#  - tx2-fake-stream: the pose stage on the strict TensorRT 8.2.1 fake with the TX2 platform and modelled GPU time
#    (TRTFAKE_EXEC_MS=15,5: each execution costs 15 + 5 x batch ms on one shared GPU, see ../shared/tools/trtfake),
#    the CPU stages (capture, figure detector, crop, decode, tracking, drawing) real, on a synthetic 1280x720 scene
#    with 4 walking figures: the sequential schedule against the pipelined one. A model of the device, not a TX2.
#  - cpu-stream: GoatPose-BL on onnxruntime (CPU), HOG at full resolution on the pedestrian video.
# Random weights: speed does not depend on the weight values.
set -e
G=.venv/bin/goatpose
PY=.venv/bin/python
TRTFAKE=../shared/tools/trtfake
ONNX=export/goatpose-bl_256x192.onnx
mkdir -p runs/engine-bench
[ -f $ONNX ] || $G export goatpose-bl -o $ONNX
[ -f runs/engine-bench/walkers.avi ] || $PY -m goatpose_edge.synthetic scene runs/engine-bench/walkers.avi \
  --preset walkers --frames 60 --width 1280 --height 720 --seed 1
ENGINE=runs/engine-bench/goatpose-bl_fp16_tx2-fake.engine
TRTFAKE_QUIET=1 $PY $TRTFAKE/run_with_fake.py --trt 8.2.1 --platform tx2 --quiet-trt --show 0 -m goatpose_edge \
  build $ONNX --precision fp16 --max-batch 8 -o $ENGINE --overwrite
TRTFAKE_QUIET=1 TRTFAKE_EXEC_MS=15,5 $PY $TRTFAKE/run_with_fake.py --trt 8.2.1 --platform tx2 --quiet-trt --show 0 \
  -m goatpose_edge bench $ENGINE --batch 1,8 --warmup 2 --iters 10 --video runs/engine-bench/walkers.avi \
  --detector figures --pipeline sequential,pipelined --repeats 3 --overwrite \
  --title "FAKE TensorRT 8.2.1 (trtfake, TX2 platform, modelled GPU time 15 + 5 x batch ms), CPU stages real" \
  --out benchmarks/tx2-fake-stream
$G bench $ONNX --batch 8 --warmup 2 --iters 10 --video ../shared/data/video/pedestrians_overhead.avi \
  --max-frames 12 --detector hog --pipeline sequential,pipelined --workers 2 --streams 1,3 --repeats 3 --overwrite \
  --title "CPU, onnxruntime: the streaming engine" --out benchmarks/cpu-stream
