"""``goatpose video`` on odd input: a folder as the source, --show without a display, a detector file that is not an
ONNX detector, frames too small for HOG (a 200x24 video), and capture backends that deliver grey frames."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from goatpose_edge.detection import DetectorError, make_detector
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video import app
from goatpose_edge.video import engine as engine_module
from goatpose_edge.video.app import VideoOptions, check_display, run_video
from goatpose_edge.video.engine import StreamOptions
from goatpose_edge.video.capture import FrameReader
from goatpose_edge.video.sources import SourceError, parse_source
from goatpose_edge.video.results import read_jsonl
from tests.helpers import goatpose_here

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def pose_onnx(tmp_path_factory):
    from tests.helpers import stand_in_pose_onnx

    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("pose") / "pose.onnx"),
                              [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])


def _write_video(path, width, height, frames=5):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened()
    for index in range(frames):
        writer.write(np.full((height, width, 3), 40 * index, np.uint8))
    writer.release()
    return path


def _goatpose(*args, env=None):
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), cwd=REPO_ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def test_a_folder_source_says_it_is_a_folder(tmp_path):
    with pytest.raises(SourceError) as info:
        parse_source(str(tmp_path))
    message = str(info.value)
    assert "is a folder" in message and "not found" not in message
    assert os.path.join(str(tmp_path), "clip.mp4") in message
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "a.AVI").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="a.AVI; the folder holds 2 video files"):
        parse_source(str(tmp_path))


def test_a_folder_source_on_the_command_line(tmp_path, pose_onnx, capsys):
    code, _, err = goatpose_here(capsys, "video", str(tmp_path), "--pose", pose_onnx)
    assert code == 1 and err.startswith("goatpose: error: video source ") and "is a folder" in err and \
        err.count("\n") == 1, err


def test_show_without_a_display_fails_before_anything_is_opened(tmp_path, pose_onnx, monkeypatch):
    video = _write_video(str(tmp_path / "in.avi"), 160, 120)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")

    def no_capture(source):
        raise AssertionError("the source was opened")

    monkeypatch.setattr(engine_module, "open_capture", no_capture)
    out, jsonl = str(tmp_path / "out.mp4"), str(tmp_path / "out.jsonl")
    with pytest.raises(GoatPoseError, match=r"--show needs a display \(DISPLAY is not set\)") as info:
        run_video(VideoOptions([video], StreamOptions(pose_onnx, detector="whole"), output=out, jsonl=jsonl, show=True,
                               progress=False))
    assert "\n" not in str(info.value)
    assert os.listdir(str(tmp_path)) == ["in.avi"]  # no output, no .partial- file


def test_show_without_a_display_on_the_command_line(tmp_path, pose_onnx):
    """Before the check, OpenCV's Qt backend aborted the process at the first frame, leaving .partial- files."""
    video = _write_video(str(tmp_path / "in.avi"), 160, 120)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    run = _goatpose("video", video, "--pose", pose_onnx, "--detector", "whole", "--show", "-o",
                    str(tmp_path / "out.mp4"), "--jsonl", str(tmp_path / "out.jsonl"), "--no-progress", env=env)
    if sys.platform.startswith("linux"):
        assert run.returncode == 1 and run.stderr == (
            "goatpose: error: --show needs a display (DISPLAY is not set): run it in a desktop session or over "
            "`ssh -X`, or drop --show and write the overlay with -o out.mp4\n"), run.stderr
        assert os.listdir(str(tmp_path)) == ["in.avi"]


def test_display_check_by_platform():
    check_display(platform="linux", environ={"DISPLAY": ":0"}, probe=False)
    check_display(platform="linux", environ={"WAYLAND_DISPLAY": "wayland-0"}, probe=False)
    check_display(platform="win32", environ={})  # Windows and macOS: not checked
    check_display(platform="darwin", environ={})
    with pytest.raises(GoatPoseError, match="DISPLAY is not set"):
        check_display(platform="linux", environ={"DISPLAY": ""})

    class Headless:
        @staticmethod
        def getBuildInformation():
            return "  Media I/O:\n  GUI:                           NONE\n  Video I/O:\n"

    class WithQt:
        @staticmethod
        def getBuildInformation():
            return "  GUI:                           QT5\n    QT:   YES (ver 5.15)\n"

    check_display(WithQt, platform="linux", environ={"DISPLAY": ":0"}, probe=False)
    with pytest.raises(GoatPoseError, match="OpenCV with a GUI"):
        check_display(Headless, platform="win32", environ={})


def test_a_display_that_is_not_there_is_one_line_not_an_abort():
    """DISPLAY=:99 with no X server there: OpenCV's Qt backend aborts the process (134); the probe runs it in a
    child, so the run is refused in one line before anything is opened."""
    environ = dict(os.environ, DISPLAY=":99", QT_QPA_PLATFORM="xcb")
    with pytest.raises(GoatPoseError, match=r"--show: no window opens on display :99 \("):
        check_display(platform="linux", environ=environ)


def _onnx_with_input(path, dims, op="Identity"):
    node = helper.make_node(op, ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("content, message", [
    (b"just some text, not a model\n", "is not a valid ONNX file"),
    (b"", "is an empty file (0 bytes)"),
    ("no-such-op", "is not a usable ONNX detector"),  # a well-formed ONNX file that onnxruntime refuses to load
    ("2d", "a detector needs a fixed [N, 3, H, W] size"),
    ("identity", "unknown detector output layout"),
], ids=["text", "empty", "unloadable", "2d-input", "not-yolo"])
def test_a_detector_file_that_is_no_detector_is_one_line(tmp_path, content, message):
    path = str(tmp_path / "det.onnx")
    if content == "no-such-op":
        _onnx_with_input(path, [1, 3, 64, 64], op="NoSuchOp")
    elif content == "2d":
        _onnx_with_input(path, [1, 10])
    elif content == "identity":
        _onnx_with_input(path, [1, 3, 64, 64])
    else:
        with open(path, "wb") as f:
            f.write(content)
    with pytest.raises(DetectorError) as info:
        make_detector(path)
    assert message in str(info.value) and path in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_text_file_named_onnx_as_video_detector(tmp_path, pose_onnx, capsys):
    video = _write_video(str(tmp_path / "in.avi"), 160, 120)
    (tmp_path / "text.onnx").write_text("not a model\n")
    code, _, err = goatpose_here(capsys, "video", video, "--pose", pose_onnx, "--detector", str(tmp_path / "text.onnx"),
                                 "--no-progress")
    assert code == 1 and err.startswith("goatpose: error: detector ") and "internal error" not in err and \
        err.count("\n") == 1, err


@pytest.mark.parametrize("width, height", [(200, 24), (24, 200)])
def test_a_video_smaller_than_the_hog_window_runs_to_the_end(tmp_path, pose_onnx, width, height, capsys):
    video = _write_video(str(tmp_path / "small.avi"), width, height, frames=6)
    out, jsonl = str(tmp_path / "out.avi"), str(tmp_path / "out.jsonl")
    code, stdout, err = goatpose_here(capsys, "video", video, "--pose", pose_onnx, "--detector", "hog", "-o", out,
                                      "--jsonl", jsonl, "--no-progress")  # in process (a HOG crash would end pytest)
    assert code == 0, err
    assert stdout.startswith("6 frames in ") and "ended: end" in stdout, stdout
    lines = read_jsonl(jsonl)[1]
    assert [line["frame"] for line in lines] == list(range(6)) and all(line["persons"] == [] for line in lines)
    capture = cv2.VideoCapture(out)
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 6 and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == width
    assert sorted(os.listdir(str(tmp_path))) == ["out.avi", "out.jsonl", "small.avi"]  # no .partial- file left


class GreyCapture:
    """A backend that delivers 8-bit grey (a GStreamer GRAY8 appsink) or 16-bit frames."""

    def __init__(self, frames):
        self.frames = list(frames)

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_capture_hands_on_bgr_frames():
    reader = FrameReader(GreyCapture([np.full((6, 8), 3, np.uint8), np.full((6, 8, 4), 5, np.uint8),
                                      np.full((6, 8), 2 ** 16 - 1, np.uint16)]), live=False, fps=10).start()
    images = [frame.image for frame in reader]
    reader.close()
    assert reader.ended == "end" and [i.shape for i in images] == [(6, 8, 3)] * 3
    assert all(i.dtype == np.uint8 for i in images)
    assert [int(i[0, 0, 0]) for i in images] == [3, 5, 255]
