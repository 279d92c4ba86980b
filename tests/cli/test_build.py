"""``goatpose build`` as a user runs it, under the strict TensorRT fakes: the trtexec line it prints is the builder's
(one decision of the TensorRT generation), and the batch-profile options."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import SHARED_DATA, stand_in_pose_onnx

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")

pytestmark = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("onnx") / "tiny.onnx"),
                              [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])


def _build(version, platform, *args):
    return subprocess.run(
        [sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform", platform,
         "--strict", "--quiet-trt", "--show", "0", "-m", "goatpose_edge", "build"] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


@pytest.mark.parametrize("version, platform, workspace", [("8.2.1", "tx2", "--workspace=512"),
                                                          ("10.x", "desktop", "--memPoolSize=workspace:512M")])
def test_print_trtexec_gives_the_same_build_in_the_generation_s_syntax(version, platform, workspace, tiny_onnx,
                                                                       tmp_path):
    engine, cache = str(tmp_path / "bl.engine"), str(tmp_path / "timing.cache")
    run = _build(version, platform, tiny_onnx, "--batch", "2", "--workspace", "512", "--timing-cache", cache,
                 "--print-trtexec", "-o", engine)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("trtexec ")]
    assert lines == ["trtexec --onnx={} --saveEngine={} --fp16 --minShapes=input:2x3x256x192 "
                     "--optShapes=input:2x3x256x192 --maxShapes=input:2x3x256x192 {} --timingCacheFile={}".format(
                         tiny_onnx, engine, workspace, cache)]


def test_batch_and_a_profile_together_are_refused_in_one_line(tiny_onnx, tmp_path):
    run = _build("8.2.1", "tx2", tiny_onnx, "--batch", "2", "--max-batch", "4", "-o", str(tmp_path / "e.engine"))
    assert run.returncode == 1 and not os.listdir(str(tmp_path))
    assert run.stderr.strip() == "goatpose: error: --batch N fixes the batch: give it or --min/--opt/--max-batch, " \
                                 "not both"
