"""``goatpose video``'s guards: the input under any spelling is never an output, a replaced output keeps its mode,
a full disk removes the output it broke and says so, pre-start checks stay linear in the number of sources, and
options that do nothing or overflow are one line (exit 2)."""

import errno
import os
import stat

import cv2
import numpy as np
import pytest

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video import app as app_module
from goatpose_edge.video import outputs as outputs_module
from goatpose_edge.video.app import VideoOptions, VideoRunError, check_video_options, run_video
from goatpose_edge.video.engine import StreamOptions
from goatpose_edge.video.results import read_jsonl
from tests.helpers import goatpose_here


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clip") / "in.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 128))
    for index in range(6):
        writer.write(np.full((128, 96, 3), 30 * index, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def pose_onnx(tmp_path_factory):
    from tests.helpers import stand_in_pose_onnx

    path = str(tmp_path_factory.mktemp("pose") / "pose.onnx")
    return stand_in_pose_onnx(path, [(np.full((17, 3, 4, 4), 0.01, np.float32), {"strides": [4, 4]})])


@pytest.mark.parametrize("spelling", ["in.avi ", " in.avi", "in.avi\n", "in.avi\r", "./in.avi"])
def test_the_input_under_any_spelling_is_never_the_output(clip, pose_onnx, spelling, capsys, monkeypatch):
    folder = os.path.dirname(clip)
    size = os.path.getsize(clip)
    monkeypatch.chdir(folder)
    code, _, err = goatpose_here(capsys, "video", spelling, "--pose", pose_onnx, "--detector", "whole", "-o", "in.avi",
                                 "--no-progress")
    assert code == 1 and "refusing to write -o in.avi" in err and err.count("\n") == 1, err
    assert os.path.getsize(clip) == size


def test_a_replaced_output_keeps_its_mode(clip, pose_onnx, tmp_path):
    out, jsonl = str(tmp_path / "out.avi"), str(tmp_path / "out.jsonl")
    for path in (out, jsonl):
        open(path, "w").close()
        os.chmod(path, 0o600)
    run_video(VideoOptions([clip], StreamOptions(pose_onnx, detector="whole"), output=out, jsonl=jsonl,
                           progress=False))
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in (out, jsonl)] == [0o600, 0o600]
    header, records = read_jsonl(jsonl)
    assert len(records) == 6 and header["format"] == "goatpose-video-jsonl/1"


def test_a_full_disk_removes_the_broken_output_and_says_so(clip, pose_onnx, tmp_path, monkeypatch):
    def full(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs_module.JsonlSink, "write", full)
    out, jsonl = str(tmp_path / "out.avi"), str(tmp_path / "out.jsonl")
    with pytest.raises(VideoRunError, match=r"--jsonl .*out.jsonl failed: \[Errno 28\] No space left on device; "
                                            r"outputs finalised: .*out.avi"):
        run_video(VideoOptions([clip], StreamOptions(pose_onnx, detector="whole"), output=out, jsonl=jsonl,
                               progress=False))
    assert sorted(os.listdir(str(tmp_path))) == ["out.avi"]  # the JSONL removed, no hidden file, the video whole


def test_a_truncated_video_is_removed_not_left_under_its_name(clip, pose_onnx, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs_module, "_frames_in", lambda path: 2)  # the container holds 2 of the 6 frames
    out = str(tmp_path / "out.avi")
    with pytest.raises(VideoRunError, match=r"holds 2 of the 6 frames written \(disk full\?\): removed"):
        run_video(VideoOptions([clip], StreamOptions(pose_onnx, detector="whole"), output=out, progress=False))
    assert os.listdir(str(tmp_path)) == []


def test_pre_start_checks_are_linear_and_the_model_comes_first(clip, tmp_path, monkeypatch):
    calls = []
    real = app_module.check_output_path
    monkeypatch.setattr(app_module, "check_output_path", lambda *a, **k: (calls.append(a), real(*a, **k)))
    sources = [clip] * 400
    options = VideoOptions(sources, StreamOptions(str(tmp_path / "missing.onnx")),
                           jsonl=str(tmp_path / "o_{stream}.jsonl"))
    with pytest.raises(GoatPoseError, match="artefact not found"):
        check_video_options(options)
    assert calls == []
    options.engine.pose = clip  # any existing file: the outputs are checked next, each once
    check_video_options(options)
    assert len(calls) == 400


@pytest.mark.parametrize("extra, message", [
    (["--smooth", "--min-cutoff", "1e308"], "--smooth: min_cutoff must be between 0.0001 and 10000 Hz"),
    (["--smooth", "--d-cutoff", "1e-320"], "--smooth: d_cutoff must be between 0.0001 and 10000 Hz"),
    (["--smooth", "--beta", "1e300"], "--smooth: beta must be between 0 and 1000"),
])
def test_smoothing_values_that_would_overflow_are_one_line(clip, pose_onnx, extra, message, capsys):
    code, _, err = goatpose_here(capsys, "video", clip, "--pose", pose_onnx, "--no-progress", *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_bench_streams_beyond_the_open_file_limit_is_one_line(clip, pose_onnx, capsys):
    code, _, err = goatpose_here(capsys, "bench", pose_onnx, "--video", clip, "--streams", "100000")
    assert code == 2 and "argument --streams: at most" in err and "ulimit -n" in err


@pytest.mark.parametrize("make, what", [(lambda p: os.mkfifo(p) or p, "is a FIFO (named pipe), not a regular file"),
                                        (lambda p: "/dev/null", "is a character device, not a regular file")])
def test_a_source_that_is_not_a_file_says_what_it_is(pose_onnx, tmp_path, make, what, capsys):
    source = make(str(tmp_path / "pipe"))
    code, _, err = goatpose_here(capsys, "video", source, "--pose", pose_onnx, "--no-progress")
    assert code == 1 and "video source {} {}".format(source, what) in err, err
    assert err.count("\n") == 1
