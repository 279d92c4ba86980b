"""``goatpose bench`` end to end on a real exported GoatPose-BL and the shared pedestrian video, and the op profile."""

import json
import os
import subprocess
import sys

import pytest

from goatpose_edge.bench.profile import onnxruntime_op_profile, summarise_profile


@pytest.fixture(scope="module")
def bl_onnx(exports):
    return exports.onnx("goatpose-bl").path


def test_profile_summary_sums_kernels_per_op_type():
    events = [{"cat": "Node", "name": "conv_1_kernel_time", "dur": 300, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "conv_2_kernel_time", "dur": 500, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "conv_1_kernel_time", "dur": 200, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "dw_kernel_time", "dur": 40, "args": {"op_name": "Conv", "input_type_shape": [
                  {"float": [1, 16, 8, 8]}, {"float": [16, 1, 3, 3]}, {"float": [16]}]}},
              {"cat": "Node", "name": "bn_kernel_time", "dur": 20, "args": {"op_name": "Conv", "input_type_shape": [
                  {"float": [1, 16, 8, 8]}, {"float": [16, 1, 1, 1]}, {"float": [16]}]}},
              {"cat": "Node", "name": "pw_kernel_time", "dur": 40, "args": {"op_name": "Conv", "input_type_shape": [
                  {"float": [1, 16, 8, 8]}, {"float": [32, 16, 1, 1]}, {"float": [32]}]}},
              {"cat": "Node", "name": "cat_kernel_time", "dur": 250, "args": {"op_name": "Concat"}},
              {"cat": "Node", "name": "cat_fence_before", "dur": 5000, "args": {"op_name": "Concat"}},
              {"cat": "Session", "name": "model_run", "dur": 9999}]
    rows = summarise_profile(events, runs=2)
    assert [r["op_type"] for r in rows[:2]] == ["Conv", "Concat"]  # slowest first
    assert {r["op_type"]: (r["ms_per_run"], r["pct"], r["kernels"]) for r in rows} == {
        "Conv": (0.5, 74.07, 2), "Concat": (0.125, 18.52, 1), "Conv (dense)": (0.02, 2.96, 1),
        "Conv (depthwise)": (0.02, 2.96, 1), "Conv (per-channel 1x1: unfolded BN/scale)": (0.01, 1.48, 1)}


def test_real_profile_of_goatpose_bl_is_mostly_convolution(bl_onnx):
    rows = onnxruntime_op_profile(bl_onnx, batch=1, runs=2, threads=2, warmup=1)
    ops = {r["op_type"]: r for r in rows}
    assert "Concat" in ops  # LiteConv's concat survives as its own kernel
    assert sum(r["pct"] for r in rows) == pytest.approx(100.0, abs=0.1)
    # GoatPose-BL's convolutions as ORT runs them: 293 dense (the primary convs, the same count as HRNet-W32's
    # convs), 226 depthwise (LiteConv's cheap operations) and some 230-250 per-channel 1x1 (mostly the BatchNorms
    # after the concats, which ORT runs as grouped convs; how many it fuses otherwise varies)
    assert ops["Conv (dense)"]["kernels"] == 293 and ops["Conv (depthwise)"]["kernels"] == 226
    assert ops["Conv (per-channel 1x1: unfolded BN/scale)"]["kernels"] >= 200
    assert ops["Conv (dense)"]["pct"] > 40


def test_bench_command_writes_json_and_markdown(bl_onnx, shared_data, tmp_path):
    video = os.path.join(shared_data, "video", "pedestrians_overhead.avi")
    out = str(tmp_path / "bench")
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "bench", bl_onnx, "--batch", "1,2", "--warmup", "1",
                          "--iters", "2", "--threads", "2", "--video", video, "--max-frames", "1", "--person-batching",
                          "--batching-frames", "1", "--out", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    record = json.load(open(out + ".json"))
    assert record["format"] == "goatpose-edge-bench/1" and record["environment"]["threads"] == 2
    (model,) = record["models"]
    assert model["model"] == "goatpose-bl" and model["backend"] == "onnxruntime"
    assert model["complexity"]["params"] == 15546753  # carried by the ONNX metadata
    assert [r["batch"] for r in model["latency"]] == [1, 2]
    assert all(r["iters"] == 2 and 0 < r["min_ms"] <= r["p50_ms"] <= r["p99_ms"] for r in model["latency"])
    configs = {c["pipeline"]: c for c in model["video"]["configs"]}
    assert sorted(configs) == ["pipelined", "sequential"]
    for config in configs.values():
        assert config["frames"] == 1 and config["persons"] > 0 and config["busy_s"]["pose"] > 0
        assert config["busy_s"]["detect"] > 0 and config["detector_runs"] == 1
        assert config["end_to_end_vs_model"] == pytest.approx(
            config["persons_per_s"] / config["model_persons_per_s"], rel=1e-2)
    sequential = configs["sequential"]
    assert sequential["workers"] == 1 and sequential["fps_vs_sequential"] == 1.0
    # one thread does every stage but capture in the sequential schedule: its busy times fit in the wall time
    assert sum(v for k, v in sequential["busy_s"].items() if k != "capture") <= sequential["wall_s"] * 1.01
    assert configs["pipelined"]["workers"] == (os.cpu_count() or 1)  # the CPU default: one session per core
    batching = model["batching"]
    assert batching["per_crop"]["max_batch"] == 1 and batching["batched"]["max_batch"] == 8
    assert batching["speedup"] == pytest.approx(
        batching["batched"]["persons_per_s"] / batching["per_crop"]["persons_per_s"], rel=1e-2)
    markdown = open(out + ".md").read()
    assert "## Model only" in markdown and "## Streaming engine on pedestrians_overhead.avi" in markdown
    assert "## Person batching" in markdown and "| goatpose-bl | 15,546,753 | 3.82 |" in markdown
    assert run.stdout.startswith("# goatpose bench")


def test_bench_refuses_bad_input_in_one_line(tmp_path, bl_onnx):
    for args, message in [(["missing.onnx"], "artefact not found"),
                          ([bl_onnx, "--batch", "0"], "positive sizes"),
                          ([bl_onnx, "--person-batching"], "needs --video"),
                          ([bl_onnx, "--video", str(tmp_path / "none.avi")], "video not found")]:
        run = subprocess.run([sys.executable, "-m", "goatpose_edge", "bench"] + args + [
            "--out", str(tmp_path / "bench")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        assert run.returncode in (1, 2) and message in run.stderr, (args, run.stderr)
        assert os.listdir(str(tmp_path)) == []  # no record, not even a partial one
