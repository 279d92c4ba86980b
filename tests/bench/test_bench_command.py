"""``goatpose bench`` end to end on a real exported GoatPose-BL and the shared pedestrian video, and the op profile."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from goatpose_edge.artefact.sidecar import sha256_of
from goatpose_edge.bench.profile import onnxruntime_op_profile, summarise_profile
from tests.helpers import SHARED_DATA, goatpose_here, stand_in_pose_onnx

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")


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
                          "--batching-frames", "1", "--detector", "whole", "--out", out],  # one person a frame
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    record = json.load(open(out + ".json"))
    assert record["format"] == "goatpose-edge-bench/1" and record["environment"]["threads"] == 2
    (model,) = record["models"]
    assert model["model"] == "goatpose-bl" and model["backend"] == "onnxruntime"
    assert model["complexity"]["params"] == 15546753  # carried by the ONNX metadata
    assert [r["batch"] for r in model["latency"]] == [1, 2]
    assert all(r["iters"] == 2 and 0 < r["min_ms"] <= r["p50_ms"] <= r["p99_ms"] for r in model["latency"])
    for row in model["latency"]:  # 3 rounds by default: the median round's row, the spread of all three
        spread = row["images_per_s_spread"]
        assert row["repeats"] == 3 and spread["min"] <= row["images_per_s"] == spread["median"] <= spread["max"]
        assert spread["pct"] == pytest.approx(100 * (spread["max"] - spread["min"]) / spread["median"], abs=0.06)
    assert model["sha256"] == sha256_of(bl_onnx) and record["reliability"]["rule"].startswith("a ratio is unreliable")
    load = record["load"]
    assert load["cores"] == os.cpu_count() and len(load["load_before"]) == 3 and load["other_cpus"] >= 0
    assert 0 < record["estimate_s"] and 0 < record["duration_s"]
    estimate = [line for line in run.stderr.splitlines() if line.startswith("bench: about ")]
    assert len(estimate) == 1 and "3 repeats x 3 calls per batch size" in estimate[0], run.stderr
    assert run.stderr.index("bench: about ") < run.stderr.index("model-only latency")  # said before it starts
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


def test_bench_refuses_bad_input_in_one_line(tmp_path, bl_onnx, capsys):
    for args, message in [(["missing.onnx"], "artefact not found"),
                          ([bl_onnx, "--batch", "0"], "positive sizes"),
                          ([bl_onnx, "--person-batching"], "needs --video"),
                          ([bl_onnx, "--video", str(tmp_path / "none.avi")], "video not found")]:
        # in process: the command's checks (it runs as a process above and below)
        code, _, err = goatpose_here(capsys, "bench", *(args + ["--out", str(tmp_path / "bench")]))
        assert code in (1, 2) and message in err, (args, err)
        assert os.listdir(str(tmp_path)) == []  # no record, not even a partial one


@pytest.fixture(scope="module")
def fake_tx2_engine(tmp_path_factory):
    """A one-conv stand-in ONNX and its FP16 engine built under trtfake's TensorRT 8.2.1 on a TX2 profile."""
    if not os.path.isdir(TRTFAKE):
        pytest.skip("../shared/tools/trtfake is not beside the checkout")
    folder = tmp_path_factory.mktemp("fake")
    onnx_path = stand_in_pose_onnx(str(folder / "tiny.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])
    engine = str(folder / "tiny.engine")
    build = _goatpose(FAKE_TX2, "build", onnx_path, "--max-batch", "2", "-o", engine)
    assert build.returncode == 0, build.stderr
    return onnx_path, engine


FAKE_TX2 = {"TRTFAKE_VERSION": "8.2.1", "TRTFAKE_PLATFORM": "tx2", "TRTFAKE_QUIET": "1", "TRTFAKE_EXEC_MS": "10,10"}


def _goatpose(fake, *args):
    env = dict(os.environ, PYTHONPATH=os.path.join(TRTFAKE, "shim"), **fake) if fake else None
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_a_bench_on_the_fake_tensorrt_says_so_and_profiles_only_the_onnx(fake_tx2_engine, tmp_path):
    onnx_path, engine = fake_tx2_engine
    out = str(tmp_path / "fake")
    run = _goatpose(FAKE_TX2, "bench", engine, onnx_path, "--batch", "1,2", "--warmup", "0", "--iters", "2",
                    "--threads", "1", "--profile-ops", "--out", out)
    assert run.returncode == 0, run.stderr
    assert "--profile-ops applies to .onnx only: tiny.engine not profiled" in run.stderr.splitlines()
    markdown = open(out + ".md").read()
    lines = markdown.splitlines()
    assert lines[4] == "**FAKE TensorRT (trtfake): API conformance only, timings are modelled (tensorrt 8.2.1.8, " \
                       "pycuda faked)**"  # the header, before any number
    assert markdown.count("NVIDIA Tegra X2") == markdown.count("NVIDIA Tegra X2 [FAKE: trtfake]") >= 1
    assert "--profile-ops applies to .onnx only (onnxruntime's profiler): tiny.engine not profiled." in markdown
    record = json.load(open(out + ".json"))
    assert record["environment"]["fake_tensorrt"].startswith("FAKE TensorRT (trtfake)")
    engine_entry, onnx_entry = record["models"]
    assert engine_entry["backend"] == "tensorrt" and "profile" not in engine_entry and onnx_entry["profile"]
    # the modelled GPU time, 10 + 10 ms a crop: 20 ms at batch 1 and 30 ms at batch 2, at most 50 and 66.7 img/s (the
    # fake's own Python costs the rest)
    bounds = [50.0, 2 / 0.030]
    assert all(0.7 * bound < r["images_per_s"] <= bound for r, bound in zip(engine_entry["latency"], bounds)), \
        engine_entry["latency"]


def test_profile_ops_without_an_onnx_is_a_usage_error(fake_tx2_engine, tmp_path):
    _, engine = fake_tx2_engine
    run = _goatpose(FAKE_TX2, "bench", engine, "--profile-ops", "--out", str(tmp_path / "x"))
    assert run.returncode == 2 and os.listdir(str(tmp_path)) == []
    assert run.stderr.strip() == "goatpose bench: error: --profile-ops applies to .onnx only (onnxruntime's " \
                                 "profiler) and none of the artefacts is one: add the .onnx the engine was built " \
                                 "from (see goatpose bench --help)"
