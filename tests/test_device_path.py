"""The device path end to end without PyTorch (runs under the Python 3.6 device venv of `make test` too): a stand-in
pose ONNX with GoatPose-BL's contract through the pipeline, `goatpose pose`, `goatpose video` on a few frames of the
real pedestrian video, and `goatpose bench` (model-only and per-stage video), as the TX2 runs them.

The stand-in's heatmaps mean nothing (a few seeded convs): these tests check the machinery (shapes, files, counts,
exit statuses), never poses.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import stand_in_pose_onnx
from goatpose_edge.video.results import read_jsonl


@pytest.fixture(scope="module")
def pose_onnx(tmp_path_factory):
    rs = np.random.RandomState(0)
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("device") / "stand_in.onnx"), [
        ((rs.randn(8, 3, 3, 3) * 0.3), {"pads": [1, 1, 1, 1]}), ((rs.randn(17, 8, 4, 4) * 0.1), {"strides": [4, 4]})])


@pytest.fixture(scope="module")
def video(shared_data):
    return os.path.join(shared_data, "video", "pedestrians_overhead.avi")


def goatpose(*args):
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_no_torch_on_this_path():
    """Under the device venv torch is absent; on the host this documents that nothing here needs it."""
    code = "import sys, goatpose_edge.cli, goatpose_edge.pipeline, goatpose_edge.video.app, goatpose_edge.bench.suite; " \
           "print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, universal_newlines=True)
    assert run.stdout.strip() == "False"


def test_pipeline_on_a_real_photo(pose_onnx, coco_persons):
    import cv2

    from goatpose_edge.detection import make_detector
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import load_runner

    path, box = coco_persons[0]
    frame = cv2.imread(path)
    with load_runner(pose_onnx) as runner, make_detector("whole") as detector:
        persons = TopDownPoseEstimator(detector, runner, flip=True)(frame)
    assert len(persons) == 1 and persons[0].keypoints.shape == (17, 3)
    assert np.isfinite(persons[0].keypoints).all()


def test_video_on_a_few_frames(pose_onnx, video, tmp_path):
    out, jsonl, summary = (str(tmp_path / n) for n in ("out.avi", "out.jsonl", "summary.json"))
    result = goatpose("video", video, "--pose", pose_onnx, "--detector", "hog:640", "--max-frames", "4", "-o", out,
                      "--jsonl", jsonl, "--summary-json", summary, "--no-progress", "--threads", "1")
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(jsonl)[1]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    record = json.load(open(summary))
    assert record["frames"] == 4 and record["ended"] == "stopped" and record["outputs"] == [out, jsonl]
    assert sorted(os.listdir(str(tmp_path))) == ["out.avi", "out.jsonl", "summary.json"]


def test_bench_model_and_video_stages(pose_onnx, video, tmp_path):
    out = str(tmp_path / "bench")
    result = goatpose("bench", pose_onnx, "--batch", "1,2", "--warmup", "0", "--iters", "2", "--threads", "1",
                      "--video", video, "--max-frames", "2", "--detector", "hog:640", "--out", out)
    assert result.returncode == 0, result.stderr
    record = json.load(open(out + ".json"))
    model = record["models"][0]
    assert [row["batch"] for row in model["latency"]] == [1, 2]
    assert [c["frames"] for c in model["video"]["configs"]] == [2, 2] and os.path.isfile(out + ".md")


def test_pose_command(pose_onnx, coco_persons, tmp_path):
    output = str(tmp_path / "poses.jsonl")
    result = goatpose("pose", coco_persons[0][0], "--pose", pose_onnx, "--detector", "whole", "-o", output)
    assert result.returncode == 0, result.stderr
    line = json.loads(open(output).read())
    assert line["image"] == coco_persons[0][0] and len(line["persons"]) == 1
