"""The streaming engine on small generated videos and a stand-in pose ONNX: every admitted frame comes out, in
order, per stream; the pipelined schedule gives the sequential one's poses; stops drain, failures abort, no thread
is left; several streams through one engine with {stream} outputs; bad input is one line."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from goatpose_edge import detection
from goatpose_edge.detection.base import Detections, Detector
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video import engine as engine_module
from goatpose_edge.video.app import VideoOptions, VideoRunError, expand_outputs, run_video
from goatpose_edge.video.engine import FrameResult, StreamEnd, StreamEngine, StreamError, StreamOptions
from tests.helpers import LostCamera, goatpose_here
from goatpose_edge.video.results import read_jsonl


@pytest.fixture(scope="module")
def pose_onnx(tmp_path_factory):
    from tests.helpers import stand_in_pose_onnx

    rng = np.random.default_rng(0)
    path = str(tmp_path_factory.mktemp("pose") / "pose.onnx")
    return stand_in_pose_onnx(path, [(rng.standard_normal((17, 3, 4, 4)).astype(np.float32) * 0.1,
                                      {"strides": [4, 4]})])


def _video(path, frames, width=96, height=128, seed=0):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    for index in range(frames):
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        cv2.putText(image, str(index), (5, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return [_video(str(folder / "v{}.avi".format(i)), n, seed=i) for i, n in enumerate((5, 9, 13))]


def _events(sources, options):
    with StreamEngine(sources, options) as engine:
        events = list(engine.events())
    assert engine.running_threads == []  # every stage joined
    return engine, events


def test_three_streams_every_frame_in_order(pose_onnx, videos):
    engine, events = _events(videos, StreamOptions(pose_onnx, detector="whole", workers=2, max_batch=2))
    for index, count in enumerate((5, 9, 13)):
        mine = [e for e in events if e.stream == index]
        assert [e.index for e in mine[:-1]] == list(range(count))  # in order, none lost
        assert isinstance(mine[-1], StreamEnd) and mine[-1].stats.ended == "end"
        assert mine[-1].stats.frames == mine[-1].stats.frames_in == count
        assert all(len(e.persons) == 1 and e.ids == [0] for e in mine[:-1])
    assert engine.stats.workers == 2 and engine.stats.pose_calls >= 27 / 2


def test_pipelined_poses_equal_the_sequential_loop(pose_onnx, videos):
    def poses(sequential):
        _, events = _events(videos[1:2], StreamOptions(pose_onnx, detector="whole", workers=None if sequential else 2,
                                                       sequential=sequential))
        return np.stack([e.persons[0].keypoints for e in events if isinstance(e, FrameResult)])

    sequential, pipelined = poses(True), poses(False)
    assert sequential.shape == (9, 17, 3)
    np.testing.assert_allclose(pipelined, sequential, rtol=1e-5, atol=1e-4)


def test_stop_lets_the_frames_in_flight_out(pose_onnx, tmp_path):
    long = _video(str(tmp_path / "long.avi"), 80)
    with StreamEngine([long], StreamOptions(pose_onnx, detector="whole", workers=1, queue_size=2)) as engine:
        results = []
        for event in engine.events():
            if isinstance(event, FrameResult):
                results.append(event.index)
                if len(results) == 2:
                    engine.stop()
            else:
                stats = event.stats
    assert stats.ended == "stopped" and stats.frames == stats.frames_in == len(results) < 80
    assert results == list(range(len(results))) and engine.running_threads == []


class _Failing(Detector):
    def __init__(self, after):
        self.after, self.calls = after, 0

    def detect(self, frame):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("detector broke")
        return Detections(np.array([[0, 0, 40, 80]], np.float32), np.ones(1, np.float32))


@pytest.mark.parametrize("sequential", [False, True], ids=["pipelined", "sequential"])
def test_a_failing_stage_aborts_every_stage(pose_onnx, videos, monkeypatch, sequential):
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: _Failing(3))
    engine = StreamEngine(videos, StreamOptions(pose_onnx, workers=1, sequential=sequential))
    with pytest.raises(StreamError, match="detect stage failed: detector broke"):  # the same error in both
        with engine:
            for _ in engine:
                pass
    assert engine.running_threads == []


def test_an_unopenable_source_among_several_fails_the_start(pose_onnx, videos, tmp_path):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"no video" * 100)
    with pytest.raises(GoatPoseError, match=r"source 1 \(.*broken.avi\): cannot open file"):
        StreamEngine([videos[0], str(broken), videos[1]], StreamOptions(pose_onnx))


def test_a_lost_stream_is_finalised_while_the_others_go_on(pose_onnx, videos, tmp_path, monkeypatch):
    real = engine_module.open_capture
    monkeypatch.setattr(engine_module, "open_capture",
                        lambda spec: LostCamera(3, (128, 96, 3)) if spec.kind == "camera" else real(spec))
    out, jsonl = str(tmp_path / "out_{stream}.avi"), str(tmp_path / "out_{stream}.jsonl")
    options = VideoOptions([videos[2], "0"], StreamOptions(pose_onnx, detector="whole", queue_size=16),
                           output=out, jsonl=jsonl, progress=False)
    with pytest.raises(VideoRunError, match=r"stream 1 \(camera 0\) stopped delivering frames after 3 frames") as info:
        run_video(options)
    streams = info.value.summary.streams
    assert streams[0].ended == "end" and streams[0].frames == 13 and streams[1].ended == "lost"
    assert [len(read_jsonl(jsonl.replace("{stream}", str(i)))[1]) for i in (0, 1)] == [13, 3]
    assert sorted(os.listdir(str(tmp_path))) == ["out_0.avi", "out_0.jsonl", "out_1.avi", "out_1.jsonl"]


def test_expand_outputs():
    assert expand_outputs("runs/o_{stream}.mp4", 3, "-o") == ["runs/o_0.mp4", "runs/o_1.mp4", "runs/o_2.mp4"]
    assert expand_outputs("o.mp4", 1, "-o") == ["o.mp4"] and expand_outputs(None, 2, "-o") == [None, None]
    with pytest.raises(GoatPoseError, match=r"-o o.mp4: 2 sources need \{stream\} in the name, e.g. o_\{stream\}.mp4"):
        expand_outputs("o.mp4", 2, "-o")


def _goatpose(*args):
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


def test_several_streams_on_the_command_line(pose_onnx, videos, tmp_path):
    jsonl, summary = str(tmp_path / "run_{stream}.jsonl"), str(tmp_path / "summary.json")
    run = _goatpose("video", videos[0], videos[1], "--pose", pose_onnx, "--detector", "whole", "--jsonl", jsonl,
                    "--summary-json", summary, "--no-progress", "--smooth", "--raw-keypoints", "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert "stream 0 (" in run.stdout and "stream 1 (" in run.stdout and "total: 14 frames of 2 streams" in run.stdout
    lines = read_jsonl(jsonl.replace("{stream}", "1"))[1]
    assert [line["frame"] for line in lines] == list(range(9))
    assert all("raw_keypoints" in p for line in lines for p in line["persons"])
    record = json.load(open(summary))
    assert record["frames"] == 14 and [s["frames"] for s in record["streams"]] == [5, 9]
    assert record["engine"]["workers"] == 2 and set(record["engine"]["busy_s"]) >= {"detect", "pose", "sink"}


@pytest.mark.parametrize("extra, message", [
    (["-o", "{d}/out.avi"], "2 sources need {stream} in the name"),
    (["--jsonl", "{d}/run.jsonl"], "2 sources need {stream} in the name"),
    (["--workers", "0"], "argument --workers: expected a positive integer, got 0"),
    (["--raw-keypoints"], "--raw-keypoints sets the smoothing: add --smooth"),
    (["--beta", "0.1"], "--beta sets the smoothing: add --smooth"),
    (["--detect", "async", "--detect-every", "3"], "--detect async runs the detector as often as it can"),
    (["--detect", "async", "--detect-workers", "3"], "--detect-workers 3: asynchronous detection runs one detector "
                                                    "per stream at a time, so 2 sources can use at most 2"),
    (["-o", "{vdir}/v{{stream}}.avi"], "refusing to write -o"),  # expands onto the inputs
    (["--summary-json", "{d}/s_{{stream}}.json"], "the summary is one file for the whole run"),
])
def test_bad_stream_options_are_one_line(pose_onnx, videos, tmp_path, extra, message, capsys):
    extra = [a.format(d=str(tmp_path), vdir=os.path.dirname(videos[0])) for a in extra]
    before = sorted(os.listdir(str(tmp_path)))
    code, _, err = goatpose_here(capsys, "video", videos[0], videos[1], "--pose", pose_onnx, "--detector", "whole",
                                 "--no-progress", *extra)  # in process: the command's checks (it runs above)
    status = 1 if message.startswith("refusing") else 2  # a protected file; the rest are command-line mistakes
    assert code == status and message in err and err.count("\n") == 1, err
    assert sorted(os.listdir(str(tmp_path))) == before and os.path.getsize(videos[0]) > 1000


def test_bench_streams_zero_is_one_line(pose_onnx, videos, capsys):
    code, _, err = goatpose_here(capsys, "bench", pose_onnx, "--video", videos[0], "--streams", "0")
    assert code == 2 and "argument --streams: expected positive sizes" in err and err.count("\n") == 1, err


def test_merge_boxes_adds_only_new_persons():
    carried = Detections(np.array([[0, 0, 50, 100]], np.float32), np.array([0.9], np.float32))
    fresh = Detections(np.array([[5, 5, 50, 100], [200, 0, 50, 100]], np.float32), np.array([0.8, 0.7], np.float32))
    merged, was_carried = engine_module.merge_boxes(carried, fresh, 0.3)
    assert merged.boxes.tolist() == [[0, 0, 50, 100], [200, 0, 50, 100]] and merged.scores.tolist() == [
        pytest.approx(0.9), pytest.approx(0.7)] and was_carried.tolist() == [True, False]
    assert engine_module.merge_boxes(carried, None, 0.3)[0] is carried
    assert engine_module.merge_boxes(Detections.empty(), fresh, 0.3)[0] is fresh


class _Nobody(Detector):
    def detect(self, frame):
        return Detections.empty()


def test_async_detection_that_finds_nobody_still_delivers_every_frame(pose_onnx, videos, monkeypatch):
    """A file with nobody to follow waits for the detector's next result, and never once it has nothing to do: each
    admitted frame is offered to the detector once at most (9 frames: at most 9 runs), and the last one is always
    taken (at least 1)."""
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: _Nobody())
    engine, events = _events(videos[1:2], StreamOptions(pose_onnx, detect="async", workers=1))
    frames = [e for e in events if isinstance(e, FrameResult)]
    assert [e.index for e in frames] == list(range(9)) and all(not e.persons for e in frames)
    assert events[-1].stats.ended == "end" and 1 <= events[-1].stats.detector_runs <= 9


def test_a_run_whose_persons_cannot_be_followed_says_so(videos, tmp_path):
    """A model whose keypoints all score 0 (as random weights nearly do): with --detect-every nobody can be followed
    between detections, and the summary says so; with --detect sync there is nothing to say."""
    from tests.helpers import stand_in_pose_onnx

    faint = stand_in_pose_onnx(str(tmp_path / "faint.onnx"),
                               [(np.zeros((17, 3, 4, 4), np.float32), {"strides": [4, 4]})])
    summary = run_video(VideoOptions([videos[2]], StreamOptions(faint, detector="whole", detect_every=3),
                                     progress=False))
    stats = summary.streams[0]
    assert stats.followed == 13 and stats.followed_ended == 13  # one person a frame, none followable
    assert any(line.startswith("13 of 13 persons (100%) could not be followed into the next frame") for line in
               summary.lines())
    synchronous = run_video(VideoOptions([videos[2]], StreamOptions(faint, detector="whole"), progress=False))
    assert synchronous.streams[0].followed == 0 and not any("could not be followed" in l for l in synchronous.lines())
