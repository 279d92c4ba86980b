#!/bin/sh
# Reproduces the CPU records in this folder (run from the repository root after `make venv`; ~25 min on 2 cores).
# Random weights: speed does not depend on the weight values.
set -e
G=.venv/bin/goatpose
VIDEO=../shared/data/video/pedestrians_overhead.avi
MODELS="goatpose-bl goatpose-bh goatpose-xl hrnet-w32 hrnet-w48"
mkdir -p runs/ckpt
onnx() {  # the default export path of a model: export/<model>_<H>x<W>.onnx
  .venv/bin/python -c "from goatpose_edge.export import default_output_path as p; from goatpose_edge.variants import get_variant as v; print(p(v('$1').contract))"
}
for m in $MODELS; do
  [ -f "$(onnx $m)" ] || $G export $m
  [ -f runs/ckpt/$m.pth ] || $G init $m -o runs/ckpt/$m.pth
done
FLAGS="--threads 2 --batch 1,8 --warmup 3 --iters 15 --video $VIDEO --max-frames 15"
$G bench $(for m in $MODELS; do onnx $m; done) $FLAGS \
  --title "CPU, onnxruntime, 2 threads" --out benchmarks/cpu-onnxruntime
$G bench $(for m in $MODELS; do echo runs/ckpt/$m.pth; done) $FLAGS \
  --title "CPU, PyTorch (deploy form), 2 threads" --out benchmarks/cpu-torch
$G bench export/goatpose-bl_256x192.onnx export/hrnet-w32_256x192.onnx --threads 2 --batch 1 --warmup 3 --iters 15 \
  --video $VIDEO --max-frames 5 --person-batching --batching-frames 10 --profile-ops \
  --title "CPU, onnxruntime, 2 threads: person batching and op profile" --out benchmarks/cpu-batching-profile
