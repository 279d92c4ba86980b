"""The TensorRT path when the device says no (under the strict fakes' fault injection, TRTFAKE_FAIL): one line,
nothing leaked; and TensorRT's single logger shared by every engine of a process."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import stand_in_pose_onnx
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
