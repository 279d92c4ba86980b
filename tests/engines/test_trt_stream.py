"""The streaming engine's pose workers on TensorRT under the strict fakes: each worker its own runner (engine copy,
execution context, stream, buffers), used from its own thread; every frame out, no misuse reported, no device
memory left. The fakes prove API use and call order, never numerics: nothing here looks at keypoint values."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.helpers import stand_in_pose_onnx
from tests.engines.test_trtfake import GENERATIONS, TRTFAKE
from goatpose_edge.video.results import read_jsonl

pytestmark = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")


def _strict(version, platform, *args):
    return subprocess.run([sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform",
                           platform, "--strict", "--quiet-trt", "--show", "0", "-m", "goatpose_edge"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clip") / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 128))
    for index in range(6):
        writer.write(np.full((128, 96, 3), 20 * index, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("version, platform, full_version", GENERATIONS, ids=[g[0] for g in GENERATIONS])
def test_two_pose_workers_on_tensorrt(version, platform, full_version, clip, tmp_path):
    onnx_path = stand_in_pose_onnx(str(tmp_path / "tiny.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])
    engine = str(tmp_path / "tiny.engine")
    build = _strict(version, platform, "build", onnx_path, "--max-batch", "4", "-o", engine)
    assert build.returncode == 0, build.stdout + build.stderr
    jsonl, summary = str(tmp_path / "run_{stream}.jsonl"), str(tmp_path / "summary.json")
    run = _strict(version, platform, "video", clip, clip, "--pose", engine, "--detector", "whole", "--workers", "2",
                  "--jsonl", jsonl, "--summary-json", summary, "--no-progress")
    assert run.returncode == 0, run.stdout + run.stderr
    memory = [line for line in run.stderr.splitlines() if "GPU memory of this runner" in line]
    assert len(memory) == 2 and all(line.startswith(engine + ": ") for line in memory), run.stderr  # one per worker
    record = json.load(open(summary))
    assert record["engine"]["workers"] == 2 and record["frames"] == 12
    for index in (0, 1):
        lines = read_jsonl(jsonl.replace("{stream}", str(index)))[1]
        assert [line["frame"] for line in lines] == list(range(6)) and all(len(l["persons"]) == 1 for l in lines)
