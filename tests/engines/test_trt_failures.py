"""The TensorRT path when the device says no (under the strict fakes' fault injection, TRTFAKE_FAIL): one line,
nothing leaked; and TensorRT's single logger shared by every engine of a process."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT, stand_in_pose_onnx
from tests.engines.test_trtfake import TRTFAKE, fake_env, goatpose

pytestmark = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Two TX2 (TensorRT 8.2.1) FP16 engines of a one-conv stand-in, batch 1..4."""
    folder = tmp_path_factory.mktemp("engines")
    onnx_path = stand_in_pose_onnx(str(folder / "tiny.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])
    paths = []
    for name in ("a", "b"):
        path = str(folder / (name + ".engine"))
        result = goatpose(fake_env("8.2.1", "tx2"), "build", onnx_path, "--max-batch", "4", "-o", path)
        assert result.returncode == 0, result.stderr
        paths.append(path)
    return onnx_path, paths


ACTIVATE = """
import sys
sys.path.insert(0, sys.argv[2])
import trtfake_common
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime import load_runner
runner = load_runner(sys.argv[1])
try:
    runner.activate()
    print("activated")
except GoatPoseError as exc:
    print("refused:", exc)
print("live device bytes:", trtfake_common.live_bytes())
"""


@pytest.mark.parametrize("fail, message", [
    ("deserialize", "refused: TensorRT could not load"),
    ("context", "refused: TensorRT could not create an execution context for"),
    ("alloc:1", "refused: CUDA failed to allocate"),
    ("alloc:2", "refused: CUDA failed to allocate"),  # the second buffer: the first one must be freed again
])
def test_activation_failure_is_one_line_and_frees_everything(engines, fail, message):
    run = subprocess.run([sys.executable, "-c", ACTIVATE, engines[1][0], TRTFAKE],
                         env=fake_env("8.2.1", "tx2", TRTFAKE_FAIL=fail), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(message), run.stdout
    assert lines[-1] == "live device bytes: 0"


def test_a_healthy_activation_holds_memory(engines):
    """The check above can fail: without an injected fault the runner holds its buffers."""
    run = subprocess.run([sys.executable, "-c", ACTIVATE, engines[1][0], TRTFAKE], env=fake_env("8.2.1", "tx2"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    lines = run.stdout.splitlines()
    assert lines[0] == "activated" and int(lines[-1].split(": ")[1]) > 0, run.stdout + run.stderr


@pytest.mark.parametrize("fail", ["context", "alloc:1", "deserialize"])
def test_bench_on_a_failing_device_is_one_line(engines, fail):
    result = goatpose(fake_env("8.2.1", "tx2", TRTFAKE_FAIL=fail), "bench", engines[1][0], "--batch", "1",
                      "--iters", "1", "--warmup", "0")
    assert result.returncode == 1 and result.stderr.startswith("goatpose: error: "), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_build_failure_is_one_line_and_leaves_nothing(engines, tmp_path):
    result = goatpose(fake_env("8.2.1", "tx2", TRTFAKE_FAIL="build"), "build", engines[0], "-o",
                      str(tmp_path / "e.engine"))
    assert result.returncode == 1 and "could not build an engine" in result.stderr and \
        result.stderr.count("\n") == 1, result.stderr
    assert os.listdir(str(tmp_path)) == []


def test_two_engines_share_one_logger(engines):
    """`goatpose verify a.engine b.engine`: TensorRT keeps one logger; a second one would be warned about."""
    run = subprocess.run([sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", "8.2.1", "--platform",
                          "tx2", "--strict", "-m", "goatpose_edge.cli", "verify", engines[1][0], engines[1][1]],
                         env=dict(os.environ, TRTFAKE_QUIET="0"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    assert "differs from one already provided" not in run.stdout, run.stdout
    assert run.returncode == 0, run.stdout


# DLA (Xavier/Orin): the engine is deserialised onto the core it was built for

DLA_ACTIVATE = """
import sys
from goatpose_edge.runtime import load_runner
lines = []
with load_runner(sys.argv[1], log=lines.append) as runner:
    print("DLA core:", runner.runtime.DLA_core)
print(lines[0])
"""


@pytest.mark.parametrize("version", ["8.2.1", "10.x"])
def test_a_dla_engine_runs_on_its_core(engines, version, tmp_path):
    engine = str(tmp_path / "dla.engine")
    built = goatpose(fake_env(version, "xavier"), "build", engines[0], "--dla-core", "1", "--batch", "2", "-o", engine)
    assert built.returncode == 0, built.stderr
    assert json.load(open(str(tmp_path / "dla.json")))["dla_core"] == 1
    script, log = str(tmp_path / "activate.py"), str(tmp_path / "log.json")
    with open(script, "w") as f:
        f.write(DLA_ACTIVATE)
    run = subprocess.run([sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform",
                          "xavier", "--strict", "--quiet-trt", "--show", "0", "--log-json", log, script, engine],
                         env=dict(os.environ, PYTHONPATH=REPO_ROOT), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert run.returncode == 0, run.stdout
    assert "DLA core: 1" in run.stdout.splitlines()
    calls = [(entry["kind"], entry["target"]) for entry in json.load(open(log))]
    assert calls.index(("set", "tensorrt.Runtime.DLA_core")) < calls.index(
        ("call", "tensorrt.Runtime.deserialize_cuda_engine"))


def test_a_dla_engine_on_a_machine_without_that_core_is_one_line(engines, tmp_path):
    engine = str(tmp_path / "dla.engine")
    assert goatpose(fake_env("8.2.1", "xavier"), "build", engines[0], "--dla-core", "1", "--batch", "2", "-o",
                    engine).returncode == 0
    run = subprocess.run([sys.executable, "-c", ACTIVATE, engine, TRTFAKE],
                         env=fake_env("8.2.1", "xavier", TRTFAKE_DLA_CORES="1"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    lines = run.stdout.splitlines()
    assert lines[0] == "refused: {} was built for DLA core 1; this Xavier has 1 DLA core(s)".format(engine), run.stdout
    assert lines[-1] == "live device bytes: 0"


@pytest.mark.parametrize("options, message", [
    (["--max-batch", "4"], "--dla-core 0: DLA runs one fixed batch, not the profile 1..4 (the whole network would run "
                           "on the GPU): give --batch N"),
    (["--batch", "2", "--precision", "fp32"], "--dla-core 0: DLA runs FP16 and INT8 layers only, an FP32 engine would "
                                              "run wholly on the GPU: build with --precision fp16 or int8"),
])
def test_what_dla_cannot_run_is_refused_before_the_build(engines, options, message, tmp_path):
    result = goatpose(fake_env("8.2.1", "xavier"), "build", engines[0], "--dla-core", "0", "-o",
                      str(tmp_path / "e.engine"), *options)
    assert result.returncode == 1 and result.stderr == "goatpose: error: {}\n".format(message), result.stderr
    assert os.listdir(str(tmp_path)) == []


# What a worker costs: logged as a runner activates

@pytest.mark.parametrize("version, platform", [("8.2.1", "tx2"), ("10.x", "desktop")])
def test_activation_logs_what_the_runner_holds_and_what_is_free(engines, version, platform, tmp_path):
    """Weights (the plan), the context's device memory (the fakes report 16 MiB), the I/O buffers at batch 4
    (4 x 3 x 256 x 192 + 4 x 17 x 64 x 48 floats = 3.0 MiB), the free memory; each spawned worker logs its own."""
    engine = engines[1][0]
    if version != "8.2.1":
        engine = str(tmp_path / "e.engine")
        assert goatpose(fake_env(version, platform), "build", engines[0], "--max-batch", "4", "-o",
                        engine).returncode == 0
    run = subprocess.run([sys.executable, "-c", MEMORY_LINES, engine], env=fake_env(version, platform),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    pattern = (r"{}: GPU memory of this runner: weights ~\d+\.\d MiB \(the plan\), context 16\.0 MiB, I/O buffers "
               r"3\.0 MiB at batch 4; (\d+) of (\d+) MiB free now$").format(re.escape(engine))
    free = [int(re.match(pattern, line).group(1)) for line in lines]
    assert len(free) == 2 and free[1] < free[0], run.stdout  # the second worker sees the first one's memory gone


MEMORY_LINES = """
import sys
from goatpose_edge.runtime import load_runner
runner = load_runner(sys.argv[1], log=print)
with runner, runner.spawn():
    pass
"""


# TensorRT >= 10 refusing a tensor's address (set_tensor_address returns False)

def test_a_refused_tensor_address_is_named():
    from types import SimpleNamespace

    from goatpose_edge.runtime.trt_api import IOTensor, TensorsApi

    tensors = [IOTensor("input", True, np.dtype(np.float32), 0), IOTensor("heatmaps", False, np.dtype(np.float32), 1)]
    launched = []
    context = SimpleNamespace(set_tensor_address=lambda name, address: name != "heatmaps",
                              execute_async_v3=lambda stream: launched.append(stream) or True)
    refused = TensorsApi(None).execute(context, tensors, {"input": 1, "heatmaps": 2}, 0)
    assert refused == "the device address of tensor 'heatmaps' (set_tensor_address)" and launched == []
    context.set_tensor_address = lambda name, address: True
    assert TensorsApi(None).execute(context, tensors, {"input": 1, "heatmaps": 2}, 7) is None and launched == [7]
