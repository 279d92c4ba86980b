"""The streaming engine when things go wrong: stops and failing stages at seeded random points, SIGTERM to busy and
to hung runs, a thread that cannot start, a stage stuck inside a call, and outputs (sinks) that fail, hang or fall
behind - every run ends within a bound, the other outputs are finalised, the error is one line."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from goatpose_edge import detection
from goatpose_edge.detection.base import Detections, Detector
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.synthetic import build_dot_pose_onnx, walkers, write_scene
from goatpose_edge.video import engine as engine_module
from goatpose_edge.video import sinks as sinks_module
from goatpose_edge.video.app import VideoOptions, VideoRunError, run_video
from goatpose_edge.video.engine import StopTimeout, StreamEngine, StreamError, StreamOptions
from goatpose_edge.video.results import FrameResult, StreamEnd, read_jsonl
from goatpose_edge.video.sinks import Sink
from goatpose_edge.video.smoothing import KeypointSmoother, OneEuroOptions
from goatpose_edge.video.stages import Stages
from tests.helpers import LostCamera

FRAMES = 30


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    video = str(folder / "walkers.avi")
    write_scene(video, video + ".truth.jsonl", walkers(frames=FRAMES, width=320, height=180, seed=5))
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), video


def _options(onnx, **extra):
    settings = dict(detector="figures", detect_every=3, detect_workers=2, workers=2)
    settings.update(extra)
    return StreamOptions(onnx, **settings)


@pytest.mark.parametrize("seed", range(3))
def test_a_stop_at_a_random_point_drains_every_stream_in_order(scene, seed):
    onnx, video = scene
    after = int(np.random.default_rng(seed).integers(0, 2 * FRAMES))
    seen = {0: [], 1: []}
    ends = {}
    with StreamEngine([video, video], _options(onnx)) as engine:
        for event in engine.events():
            if isinstance(event, FrameResult):
                seen[event.stream].append(event.index)
                if sum(len(v) for v in seen.values()) == after:
                    engine.stop()
            else:
                ends[event.stream] = event.stats
    for stream in (0, 1):
        stats = ends[stream]
        assert seen[stream] == list(range(len(seen[stream])))  # in order, none lost
        assert stats.frames == stats.frames_in == len(seen[stream]) and stats.ended in ("stopped", "end")
    assert engine.running_threads == []


class _FailsAt(Detector):
    def __init__(self, call):
        self.call, self.calls, self.closed = call, 0, False
        self.lock = threading.Lock()

    def detect(self, frame):
        with self.lock:
            self.calls += 1
            calls = self.calls
        if calls == self.call:
            raise RuntimeError("detector broke at call {}".format(calls))
        return Detections(np.array([[10, 10, 60, 120]], np.float32), np.ones(1, np.float32))

    def close(self):
        self.closed = True


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("sequential", [False, True], ids=["pipelined", "sequential"])
def test_a_stage_failing_at_a_random_point_aborts_every_stage(scene, monkeypatch, seed, sequential):
    onnx, video = scene
    call = int(np.random.default_rng(seed).integers(1, 10))
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: _FailsAt(call))
    engine = StreamEngine([video, video], _options(onnx, detect_every=1, sequential=sequential,
                                                   detect_workers=1 if sequential else 2))
    start = time.monotonic()
    with pytest.raises(StreamError, match="detect stage failed: detector broke at call {}".format(call)):
        with engine:
            for _ in engine:
                pass
    assert engine.running_threads == [] and time.monotonic() - start < 30
    assert all(d.closed for d in engine.detectors)  # each released by the thread that owned it


def test_a_failing_post_stage_is_one_error(scene, monkeypatch):
    onnx, video = scene
    real = Stages._post_item

    def post(self, item, state, estimator):
        if item.seq == 7:
            raise ValueError("decoding broke")
        return real(self, item, state, estimator)

    monkeypatch.setattr(Stages, "_post_item", post)
    with pytest.raises(StreamError, match="post stage failed: decoding broke"):
        with StreamEngine([video], _options(onnx)) as engine:
            for _ in engine:
                pass
    assert engine.running_threads == []


class _Stuck(Detector):
    """A detector whose second call never returns until released (a call stuck in native code)."""

    def __init__(self):
        self.calls, self.release, self.closed = 0, threading.Event(), False

    def detect(self, frame):
        self.calls += 1
        if self.calls >= 2:
            self.release.wait()
        return Detections(np.array([[10, 10, 60, 120]], np.float32), np.ones(1, np.float32))

    def close(self):
        self.closed = True


def test_a_stop_whose_frames_do_not_come_out_times_out_naming_the_stage(scene, monkeypatch):
    onnx, video = scene
    stuck = _Stuck()
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: stuck)
    monkeypatch.setattr(engine_module, "JOIN_GRACE_S", 0.5)
    engine = StreamEngine([video], _options(onnx, detect_every=1, detect_workers=1))
    start = time.monotonic()
    with pytest.raises(StopTimeout, match="the detect stage did not stop within 0.5 s"):
        with engine:
            for _ in engine:
                engine.stop(grace=0.5)
    assert time.monotonic() - start < 10
    assert engine.stats.stuck == ["detect"] and not stuck.closed  # never freed under the thread inside it
    stuck.release.set()  # the call returns: its thread leaves and releases the detector itself
    for thread in engine.threads:
        thread.join(10)
    assert engine.running_threads == [] and stuck.closed


def test_a_thread_that_cannot_start_is_one_line_and_nothing_is_left(scene, monkeypatch, tmp_path):
    onnx, video = scene
    real = threading.Thread.start
    started = []

    def start(self):
        if self.name.startswith("goatpose-") and self.name != "goatpose-capture" and len(started) >= 3:
            raise RuntimeError("can't start new thread")
        if self.name.startswith("goatpose-") and self.name != "goatpose-capture":
            started.append(self)
        real(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    jsonl = str(tmp_path / "out.jsonl")
    with pytest.raises(GoatPoseError, match=r"cannot start a thread \(can't start new thread\)"):
        run_video(VideoOptions([video], _options(onnx), jsonl=jsonl, progress=False))
    for thread in started:
        thread.join(10)
    assert not any(t.is_alive() for t in started) and os.listdir(str(tmp_path)) == []


def _goatpose(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "goatpose_edge"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, **kwargs)


@pytest.mark.parametrize("seed", range(2))
def test_sigterm_at_a_random_point_finalises_every_output(scene, tmp_path, seed):
    onnx, video = scene
    delay = float(np.random.default_rng(seed).uniform(0.0, 1.5))
    jsonl, out = str(tmp_path / "run_{stream}.jsonl"), str(tmp_path / "run_{stream}.avi")
    process = _goatpose("video", video, video, video, "--pose", onnx, "--detector", "figures:20", "--detect-every",
                        "2", "--detect-workers", "2", "--jsonl", jsonl, "-o", out, "--no-progress",
                        "--stop-grace", "60")
    time.sleep(delay)  # a random point: before, during or after the start (a loaded machine drains slowly)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode in (143, -signal.SIGTERM):  # before the run started: the interpreter starting (the
        # default handler) or the model loading (a terminated command); either way nothing was written
        assert process.returncode == -signal.SIGTERM or "goatpose: terminated (SIGTERM)" in stderr, stderr
        assert os.listdir(str(tmp_path)) == []
        return
    assert process.returncode == 0, stderr
    import cv2

    for index in range(3):
        path = jsonl.replace("{stream}", str(index))
        lines = read_jsonl(path)[1] if os.path.exists(path) else []
        assert [line["frame"] for line in lines] == list(range(len(lines)))
        capture = cv2.VideoCapture(out.replace("{stream}", str(index)))
        frames = 0
        while capture.read()[0]:
            frames += 1
        assert frames == len(lines)  # every frame that came out is in both outputs
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith(".")]  # no hidden partial file


def test_sigterm_to_a_run_stuck_in_a_stage_ends_it_in_one_line(scene, tmp_path):
    """A detector that takes 100 s a frame: SIGTERM still ends the run within the stop's grace and the join's,
    with the frames written so far finalised and one line naming the stage."""
    onnx, video = scene
    jsonl = str(tmp_path / "run.jsonl")
    process = _goatpose("video", video, "--pose", onnx, "--detector", "figures:100000", "--jsonl", jsonl,
                        "--no-progress")
    time.sleep(3)  # the first detection is under way
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    took = time.monotonic() - start
    assert process.returncode == 1 and took < engine_module.STOP_GRACE_S + engine_module.JOIN_GRACE_S + 5, (took,
                                                                                                          stderr)
    assert stderr.count("\n") == 2 and "the detect stage did not stop within 5 s" in stderr, stderr  # start + error
    assert "Traceback" not in stderr and os.listdir(str(tmp_path)) == []  # no frame came out: nothing written


class _Slow(Sink):
    """A live output that never returns from its first write until released."""

    name = "slow view"
    wants = "overlay"
    policy = "latest"

    def __init__(self):
        self.release, self.frames = threading.Event(), 0

    def write(self, frame):
        self.frames += 1
        assert frame.overlay is not None and frame.overlay is not frame.result.image  # drawn on a copy
        self.release.wait()


class _Raises(Sink):
    name = "broken output"

    def write(self, frame):
        if frame.result.index == 3:
            raise OSError(28, "No space left on device")


class _Camera(LostCamera):
    """A live camera: ``count`` frames, each a little after the one before."""

    def read(self):
        time.sleep(0.002)
        return super().read()


def test_a_stalled_live_output_does_not_hold_up_the_other_outputs(scene, monkeypatch, tmp_path):
    onnx, _ = scene
    monkeypatch.setattr(engine_module, "open_capture", lambda spec: _Camera(40, (180, 320, 3)))
    monkeypatch.setattr(sinks_module, "CLOSE_GRACE_S", 0.5)
    slow = _Slow()
    jsonl = str(tmp_path / "cam.jsonl")
    with pytest.raises(VideoRunError, match=r"camera 0 stopped delivering frames after \d+ frames .*; slow view: did "
                                            r"not finish within 0.5 s") as info:  # the camera ends: lost
        run_video(VideoOptions(["0"], _options(onnx, detect_every=1), jsonl=jsonl, progress=False), sinks=[slow])
    lines = read_jsonl(jsonl)[1]
    assert slow.frames == 1 and len(lines) == info.value.summary.frames > 1  # the JSONL got every frame meanwhile
    slow.release.set()


def test_an_output_that_fails_is_one_line_and_the_others_are_finalised(scene, tmp_path):
    onnx, video = scene
    jsonl = str(tmp_path / "run.jsonl")
    with pytest.raises(VideoRunError, match=r"broken output failed: \[Errno 28\] No space left on device; outputs "
                                            r"finalised: .*run.jsonl") as info:
        run_video(VideoOptions([video], _options(onnx), jsonl=jsonl, progress=False), sinks=[_Raises()])
    assert len(read_jsonl(jsonl)[1]) == FRAMES == info.value.summary.frames


class _NeverCloses(Sink):
    name = "stuck output"
    policy = "latest"

    def __init__(self):
        self.release = threading.Event()

    def write(self, frame):
        pass

    def close(self):
        self.release.wait()
        return []


def test_an_output_that_never_finishes_is_named_and_the_run_ends(scene, monkeypatch, tmp_path):
    onnx, video = scene
    monkeypatch.setattr(sinks_module, "CLOSE_GRACE_S", 0.5)
    stuck = _NeverCloses()
    jsonl = str(tmp_path / "run.jsonl")
    with pytest.raises(VideoRunError, match=r"stuck output: did not finish within 0.5 s \(left as it is\); outputs "
                                            r"finalised: .*run.jsonl"):
        run_video(VideoOptions([video], _options(onnx), jsonl=jsonl, progress=False), sinks=[stuck])
    assert len(read_jsonl(jsonl)[1]) == FRAMES
    stuck.release.set()


def test_the_centre_filter_follows_beta_and_the_fallback_fps_is_the_fallback_fps():
    """--beta 0.2: the centre's beta is 5 x 0.2 (docs/video.md); fallback_fps=10 stays the fallback (it once landed in
    centre_beta, positionally)."""
    smoother = KeypointSmoother(OneEuroOptions(beta=0.2, fallback_fps=10.0))
    assert smoother.centre_options.beta == pytest.approx(1.0) and smoother.centre_options.fallback_fps == 10.0
    assert smoother.centre_options.min_cutoff == 1.5 and smoother.centre_options.d_cutoff == 2.0
    explicit = KeypointSmoother(OneEuroOptions(beta=0.2, centre_beta=0.5))
    assert explicit.centre_options.beta == 0.5


def test_an_interrupt_after_a_frame_was_written_does_not_write_it_again(scene, tmp_path, monkeypatch):
    """Ctrl-C during the write of the third frame: the frame is out, the stop begins, and the frame is not delivered
    a second time."""
    from goatpose_edge.video.sinks import SinkSet

    real = SinkSet.write
    calls = []

    def write(self, result):
        calls.append(1)
        real(self, result)
        if len(calls) == 3:  # handled here, in the main thread, as the write ends
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    monkeypatch.setattr(SinkSet, "write", write)
    onnx, video = scene
    jsonl = str(tmp_path / "run.jsonl")
    summary = run_video(VideoOptions([video], _options(onnx), jsonl=jsonl, progress=False))
    frames = [r["frame"] for r in read_jsonl(jsonl)[1]]
    assert frames == list(range(len(frames))) and 3 <= len(frames) < FRAMES
    assert summary.ended == "interrupted" and summary.streams[0].frames == len(frames)


class _Blocks(Sink):
    """A file-like output (it waits, never drops) that stops taking frames after two: a hung disk or pipe."""

    name = "hung output"
    policy = "wait"

    def __init__(self):
        self.release, self.frames = threading.Event(), 0

    def write(self, frame):
        self.frames += 1
        if self.frames > 2:
            self.release.wait(120)  # released by the test; bounded, so a test that goes wrong fails, never hangs


def test_a_stop_with_a_stalled_file_output_still_ends(scene, tmp_path):
    """Ctrl-C while a waiting output is stalled: the stop waits for it at most the grace, then the run ends with
    the other outputs finalised and one line; it never hangs."""
    import os as os_module

    onnx, video = scene
    hung = _Blocks()
    # Ctrl-C as a terminal gives it, even where this process inherited SIGINT ignored (a job started in the
    # background): the signal would change nothing and the run would wait on the hung output until released
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(2.0, lambda: os_module.kill(os_module.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(VideoRunError, match=r"the outputs took no frame within 0.5 s of the stop"):
            run_video(VideoOptions([video], _options(onnx), jsonl=str(tmp_path / "run.jsonl"), progress=False,
                                   stop_grace=0.5), sinks=[hung])
    finally:
        timer.cancel()
        hung.release.set()
        signal.signal(signal.SIGINT, before)
    assert time.monotonic() - start < 15
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".")]  # nothing half-written left hidden
