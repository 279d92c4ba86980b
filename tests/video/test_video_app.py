"""``goatpose video`` on the real pedestrian video (its container claims 682 frames, OpenCV decodes 341) with a
stand-in pose ONNX (GoatPose-BL's I/O and contract around one conv: the machinery, not poses; the real networks run
in tests/test_device_path.py and the benchmarks): every frame out, a playable video, parseable JSONL inside the
frame, clean stops and clear errors. Resident memory over whole files is a benchmark (benchmarks/README.md)."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video import engine as engine_module
from goatpose_edge.video.app import VideoOptions, run_video
from goatpose_edge.video.engine import StreamOptions
from tests.helpers import LostCamera
from goatpose_edge.video.results import read_jsonl

HEADER_FRAMES = 682  # what pedestrians_overhead.avi's container claims; OpenCV decodes fewer (counted below)


@pytest.fixture(scope="module")
def video(shared_data):
    return os.path.join(shared_data, "video", "pedestrians_overhead.avi")


@pytest.fixture(scope="module")
def bl_onnx(tmp_path_factory):
    from tests.helpers import stand_in_pose_onnx

    rng = np.random.default_rng(0)
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("pose") / "pose.onnx"),
                              [(rng.standard_normal((17, 3, 4, 4)).astype(np.float32) * 0.1, {"strides": [4, 4]})])


def _frame_count(path):
    capture = cv2.VideoCapture(path)
    assert capture.isOpened()
    count = 0
    while capture.read()[0]:
        count += 1
    return count, (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))


def test_whole_file(video, bl_onnx, tmp_path):
    FRAMES, size = _frame_count(video)  # frames in: every frame OpenCV decodes from the input
    assert size == (1280, 720) and 300 < FRAMES <= HEADER_FRAMES
    out, jsonl = str(tmp_path / "out.mp4"), str(tmp_path / "out.jsonl")
    summary = run_video(VideoOptions([video], StreamOptions(bl_onnx, detector="whole"), output=out, jsonl=jsonl,
                                     progress=False))
    stream = summary.streams[0]
    assert summary.frames == FRAMES and stream.frame_count == HEADER_FRAMES and stream.dropped == 0
    assert summary.ended == "end" and summary.outputs == [out, jsonl] and summary.persons > 0
    assert stream.frames_in == FRAMES  # every frame the engine admitted came out
    assert _frame_count(out) == (FRAMES, (1280, 720))
    lines = read_jsonl(jsonl)[1]
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert lines[0]["time"] == 0.0 and all(b["time"] > a["time"] for a, b in zip(lines, lines[1:]))
    persons = [p for line in lines for p in line["persons"]]
    assert len(persons) == summary.persons
    points = np.array([p["keypoints"] for p in persons])  # [P, 17, 3]
    assert points.shape[1:] == (17, 3)
    assert (points[..., 0] >= 0).all() and (points[..., 0] <= 1279).all()
    assert (points[..., 1] >= 0).all() and (points[..., 1] <= 719).all()
    assert all(isinstance(p["id"], int) and len(p["box"]) == 4 for p in persons)
    assert [f for f, _ in summary.rss_mb] == list(range(50, FRAMES, 50)) + [FRAMES]  # sampled every 50 frames
    assert set(os.listdir(str(tmp_path))) == {"out.mp4", "out.jsonl"}  # no temporary files left


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_leaves_playable_outputs(video, bl_onnx, tmp_path, stop):
    """Ctrl-C and SIGTERM (docker stop, systemd) are the same normal stop: every output finalised, exit 0."""
    out, jsonl = str(tmp_path / "out.mp4"), str(tmp_path / "out.jsonl")
    process = subprocess.Popen([sys.executable, "-m", "goatpose_edge", "video", video, "--pose", bl_onnx,
                                "--detector", "figures:50", "-o", out, "--jsonl", jsonl, "--no-progress", "--threads", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    partial = os.path.join(str(tmp_path), ".out.partial-{}.jsonl".format(process.pid))
    deadline = time.time() + 120
    while time.time() < deadline and (not os.path.exists(partial) or sum(1 for _ in open(partial)) < 5):
        time.sleep(0.2)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "ended: interrupted" in stdout
    lines = read_jsonl(jsonl)[1]
    assert 5 <= len(lines) < 300
    assert _frame_count(out)[0] == len(lines)  # every processed frame is in the finalised video
    assert set(os.listdir(str(tmp_path))) == {"out.mp4", "out.jsonl"}


def test_lost_camera_is_an_error_after_finalising(bl_onnx, tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "open_capture", lambda source: LostCamera(7))
    out, jsonl = str(tmp_path / "cam.avi"), str(tmp_path / "cam.jsonl")
    with pytest.raises(GoatPoseError, match="camera 0 stopped delivering frames after 7 frames"):
        run_video(VideoOptions(["0"], StreamOptions(bl_onnx, detector="whole", queue_size=16), output=out,
                               jsonl=jsonl, progress=False))  # room for all 7: a live source would drop frames it cannot hold
    assert _frame_count(out)[0] == 7 and len(read_jsonl(jsonl)[1]) == 7


@pytest.mark.parametrize("make_args, message", [
    (lambda d, v, m: ["/no/such.mp4", "--pose", m], "video not found"),
    (lambda d, v, m: [os.path.join(d, "broken.avi"), "--pose", m], "cannot open file"),
    (lambda d, v, m: [v, "--pose", m, "-o", v], "refusing to write -o"),
    (lambda d, v, m: [v, "--pose", os.path.join(d, "none.onnx")], "artefact not found"),
    (lambda d, v, m: [v, "--pose", m, "--summary-json", v], "refusing to write --summary-json"),
    (lambda d, v, m: [v, "--pose", m, "-o", os.path.join(d, "out.webm")], "expected a .avi or"),
    (lambda d, v, m: [v, "--pose", m, "-o", d], "is a folder"),
])
def test_bad_input_one_line(video, bl_onnx, tmp_path, make_args, message):
    (tmp_path / "broken.avi").write_bytes(b"not a video at all" * 100)
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "video"] + make_args(str(tmp_path), video, bl_onnx),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 1 and message in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert os.path.getsize(video) > 1000000  # the input is untouched


def test_the_start_lines_come_before_the_progress_bar(video, bl_onnx, tmp_path, capsys):
    """tqdm draws its bar as soon as it is made: the start line (source -> outputs) is said first, and the bar
    starts on the line after it (it was once drawn first, the start line glued to its end)."""
    jsonl = str(tmp_path / "out.jsonl")
    run_video(VideoOptions([video], StreamOptions(bl_onnx, detector="whole", max_frames=3), jsonl=jsonl),
              log=lambda line: print(line, file=sys.stderr))
    err = capsys.readouterr().err
    said, bar = err.split("\r", 1)[0].split("\n"), err[err.index("\r"):] if "\r" in err else ""
    assert said == ["file {}: pose.onnx -> -, {}".format(video, jsonl), ""], err  # the bar on a line of its own
    assert "3/3" in bar and "frame" in bar
