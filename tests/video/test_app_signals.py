"""``goatpose video`` and Ctrl-C / SIGTERM (``video.app``, ``signals.SignalInbox``), each signal injected exactly where
it used to cut the run: the moment the engine hands a frame out, while the handlers changed (they were swapped around
every frame's write), during the finalisation's joins. Every frame the engine produced is written once and in order,
the handlers after the run are the ones before it and a later Ctrl-C or SIGTERM still raises, every output is
finalised (no temporary file left). Deterministic: the code at each point sends the signal to the main thread
(``signal.pthread_kill``: its handler runs at the main thread's next bytecode, or wakes the wait it is in); no assert
depends on timing."""

import json
import os
import signal
import threading

import numpy as np
import pytest

from goatpose_edge import detection
from goatpose_edge.detection.base import Detections, Detector
from goatpose_edge.signals import Terminated
from goatpose_edge.synthetic import build_dot_pose_onnx, walkers, write_scene
from goatpose_edge.video import engine as engine_module
from goatpose_edge.video import sinks as sinks_module
from goatpose_edge.video.app import VideoOptions, VideoRunError, run_video
from goatpose_edge.video.engine import StreamEngine, StreamOptions
from goatpose_edge.video.results import FrameResult, read_jsonl
from goatpose_edge.video.sinks import Sink, SinkSet

FRAMES = 16
OUTPUTS = ["run.jsonl", "summary.json"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    video = str(folder / "walkers.avi")
    write_scene(video, video + ".truth.jsonl", walkers(frames=FRAMES, width=160, height=96, seed=5))
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), video


def _terminated(signum, frame):
    raise Terminated("SIGTERM")


@pytest.fixture
def handlers():
    """As under ``goatpose``'s main (``sigterm_as_interrupt``, less its ignoring of a second SIGTERM): Ctrl-C raises
    KeyboardInterrupt, SIGTERM ``Terminated``; yields the two handlers, and puts back the ones before the test."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, _terminated)
    try:
        yield signal.default_int_handler, _terminated
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def _signal_main(signum):
    signal.pthread_kill(threading.main_thread().ident, signum)


def _options(scene, folder, **extra):
    onnx, video = scene
    engine = StreamOptions(onnx, detector="figures", detect_every=3, workers=1, detect_workers=1)
    return VideoOptions([video], engine, jsonl=str(folder / "run.jsonl"), summary_json=str(folder / "summary.json"),
                        progress=False, **extra)


def _run(options, sinks=None):
    """``run_video``; a signal it let out fails the test (pytest would take it for the user's: the session ends)."""
    try:
        return run_video(options, sinks=sinks)
    except KeyboardInterrupt as exc:
        pytest.fail("run_video raised {!r}: the signal was not taken as a stop".format(exc))


def _frames(folder):
    return [line["frame"] for line in read_jsonl(str(folder / "run.jsonl"))[1]]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_as_the_engine_hands_a_frame_out_loses_no_frame(scene, tmp_path, monkeypatch, handlers, signum):
    """The signal is handled the moment the engine has handed frame 2 out, before its caller holds it (it was lost:
    taken from the engine, written by no output). Now every frame the engine produced is written, once and in order,
    and the stop lets the frames in flight out."""
    real = StreamEngine.next_event
    sent = []

    def next_event(self):
        event = real(self)
        if isinstance(event, FrameResult) and event.index == 2 and not sent:
            sent.append(signum)
            _signal_main(signum)  # handled here, at the next bytecode: the frame is out of the engine
        return event

    monkeypatch.setattr(StreamEngine, "next_event", next_event)
    summary = _run(_options(scene, tmp_path))
    assert sent and summary.ended == "interrupted"
    assert _frames(tmp_path) == list(range(summary.streams[0].frames)) and summary.streams[0].frames >= 3
    assert sorted(os.listdir(str(tmp_path))) == OUTPUTS


def test_the_handlers_are_set_once_for_the_run_not_around_each_frame(scene, tmp_path, monkeypatch, handlers):
    """One handler for the whole run: set once and put back once, whatever the number of frames (they were swapped
    around every frame's write, and a signal inside a swap could leave the recording handler for good)."""
    real = signal.signal
    calls = []

    def spy(signum, handler):
        calls.append(signum)
        return real(signum, handler)

    monkeypatch.setattr(signal, "signal", spy)
    summary = _run(_options(scene, tmp_path))
    assert summary.frames == FRAMES and _frames(tmp_path) == list(range(FRAMES))
    assert sorted(calls) == sorted([signal.SIGINT, signal.SIGTERM] * 2)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


@pytest.mark.parametrize("point", ["set", "put back"])
def test_a_signal_while_the_handlers_change_leaves_no_recording_handler(scene, tmp_path, monkeypatch, handlers, point):
    """A signal handled right after Ctrl-C's handler changed: as the run's is set ("set": SIGTERM, whose handler is
    still the one before) or as the one before is put back ("put back": Ctrl-C itself). It used to leave a handler that
    only records installed for good (later Ctrl-C or SIGTERM ignored). Now the handlers after the run are the ones
    before it and raise again; "set" is a command terminated before its run started (nothing written), "put back" an
    interrupt once every output was finalised."""
    original_int, original_term = handlers
    real = signal.signal
    sent = []

    def spy(signum, handler):
        previous = real(signum, handler)
        if signum == signal.SIGINT and not sent and (handler is not original_int) == (point == "set"):
            sent.append(point)
            _signal_main(signal.SIGTERM if point == "set" else signal.SIGINT)
        return previous

    monkeypatch.setattr(signal, "signal", spy)
    with pytest.raises(KeyboardInterrupt) as raised:
        run_video(_options(scene, tmp_path))
    monkeypatch.undo()
    assert sent
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (original_int, original_term)
    with pytest.raises(KeyboardInterrupt):
        _signal_main(signal.SIGINT)
    with pytest.raises(Terminated):
        _signal_main(signal.SIGTERM)
    if point == "set":
        assert raised.type is Terminated and os.listdir(str(tmp_path)) == []
    else:
        assert raised.type is KeyboardInterrupt and _frames(tmp_path) == list(range(FRAMES))
        assert sorted(os.listdir(str(tmp_path))) == OUTPUTS


class _SignalsOnClose(Sink):
    """An output whose close (in its own thread, while the main thread joins the outputs) signals the main thread."""

    name = "signalling output"
    policy = "latest"

    def __init__(self, signum):
        self.signum, self.sent = signum, False

    def write(self, frame):
        pass

    def close(self):
        self.sent = True
        _signal_main(self.signum)
        return []


@pytest.mark.parametrize("point, signum", [("engine", signal.SIGINT), ("outputs", signal.SIGINT),
                                           ("outputs", signal.SIGTERM)],
                         ids=["ctrl-c-engine-close", "ctrl-c-outputs-close", "sigterm-outputs-close"])
def test_a_signal_during_the_finalisation_closes_every_output(scene, tmp_path, monkeypatch, handlers, point, signum):
    """A signal as the engine's threads are joined ("engine": the outputs were never closed, their temporary files
    left) or while the outputs' are ("outputs": the outputs after it, the summary, never closed). The run ended by
    itself: the signal changes nothing, every output is finalised, exit 0."""
    real = StreamEngine.close
    sent = []

    def close(self):
        if point == "engine" and not sent:
            sent.append(signum)
            _signal_main(signum)
        real(self)

    monkeypatch.setattr(StreamEngine, "close", close)
    signalling = _SignalsOnClose(signum)
    summary = _run(_options(scene, tmp_path), sinks=[signalling])
    assert sent or signalling.sent
    assert summary.ended == "end" and _frames(tmp_path) == list(range(FRAMES))
    assert sorted(os.listdir(str(tmp_path))) == OUTPUTS  # no temporary file left beside them
    with open(str(tmp_path / "summary.json")) as f:
        assert json.load(f)["frames"] == FRAMES


class _Hangs(Sink):
    """A file-like output (it waits, never drops) that never returns from its first write until released."""

    name = "hung output"
    policy = "wait"

    def __init__(self):
        self.release = threading.Event()

    def write(self, frame):
        self.release.wait()


def test_a_second_signal_ends_the_stop_at_once(scene, tmp_path, monkeypatch, handlers):
    """Ctrl-C as the main thread is about to wait for a hung output (its queue full), a second one once the first
    stopped the engine: the run ends at once, not after the 60 s --stop-grace (the outputs that took no frame within
    it would be named), with the hung output named and the others finalised."""
    monkeypatch.setattr(sinks_module, "CLOSE_GRACE_S", 0.5)
    real_room, real_stop = SinkSet.room, StreamEngine.stop
    calls = []

    def room(self, stream, deadline=None):
        calls.append(stream)
        if len(calls) == 10:  # 1 frame in the hung write, 8 queued: this one waits
            _signal_main(signal.SIGINT)
        return real_room(self, stream, deadline)

    def stop(self, grace=None):
        real_stop(self, grace)
        _signal_main(signal.SIGINT)  # the first was taken: this is a second one

    monkeypatch.setattr(SinkSet, "room", room)
    monkeypatch.setattr(StreamEngine, "stop", stop)
    hung = _Hangs()
    try:
        with pytest.raises(VideoRunError) as info:
            _run(_options(scene, tmp_path, stop_grace=60.0), sinks=[hung])
    finally:
        hung.release.set()
    message = str(info.value)
    assert "hung output: did not finish within 0.5 s" in message and "within 60 s" not in message, message
    assert info.value.summary.ended == "interrupted"
    frames = _frames(tmp_path)
    assert frames == list(range(len(frames))) and 9 <= len(frames) < FRAMES
    assert sorted(os.listdir(str(tmp_path))) == OUTPUTS


class _Stuck(Detector):
    """A detector whose second call never returns until released (a call stuck in native code)."""

    def __init__(self):
        self.calls, self.release = 0, threading.Event()

    def detect(self, frame):
        self.calls += 1
        if self.calls >= 2:
            self.release.wait()
        return Detections(np.array([[10, 10, 60, 90]], np.float32), np.ones(1, np.float32))


def _stop_past_the_grace(options, stuck, folder):
    """Run with the detector stuck from frame 1 (detected every frame): the stop's 0.5 s grace ends the run, the error
    names the stage, frame 0 is written and nothing else is left; returns the run's summary."""
    options.engine.detect_every = 1
    try:
        with pytest.raises(VideoRunError, match=r"the detect stage did not stop within 0.5 s") as info:
            _run(options)
    finally:
        stuck.release.set()
    assert _frames(folder) == [0] and sorted(os.listdir(str(folder))) == OUTPUTS
    return info.value.summary


def test_a_stop_whose_frames_do_not_come_out_names_the_stage(scene, tmp_path, monkeypatch, handlers):
    """Ctrl-C once frame 0 is out while the detector is stuck on frame 1: the stop's grace ends the run, the error
    names the stage, frame 0 is written."""
    stuck = _Stuck()
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: stuck)
    monkeypatch.setattr(engine_module, "JOIN_GRACE_S", 0.5)
    real = StreamEngine.next_event

    def next_event(self):
        event = real(self)
        if isinstance(event, FrameResult) and event.index == 0:
            _signal_main(signal.SIGINT)
        return event

    monkeypatch.setattr(StreamEngine, "next_event", next_event)
    options = _options(scene, tmp_path, stop_grace=0.5)
    assert _stop_past_the_grace(options, stuck, tmp_path).ended == "interrupted"


class _QuitWindow(Sink):
    """``--show``'s window (``outputs.Window``) with ``q`` pressed as frame 0 is shown."""

    name = "--show"
    policy = "latest"

    def __init__(self, streams, on_quit):
        self.on_quit = on_quit

    def write(self, frame):
        if frame.result.index == 0:
            self.on_quit()
            self.on_quit()  # q held down: the stop is under way, a second q does not end it at once


def test_q_in_the_window_is_a_stop_bounded_by_the_grace(scene, tmp_path, monkeypatch, handlers):
    """``q`` (twice, a key held down) as frame 0 is shown while the detector is stuck on frame 1: like Ctrl-C, the
    stop's grace ends the run and names the stage (``q`` once stopped the engine with no bound: the run waited for
    the stuck call), but the summary says stopped, not interrupted, and the second ``q`` is no second Ctrl-C (that
    would end the run at once, without the grace's error)."""
    from goatpose_edge.video import app

    stuck = _Stuck()
    monkeypatch.setattr(detection, "make_detector", lambda spec, **kw: stuck)
    monkeypatch.setattr(engine_module, "JOIN_GRACE_S", 0.5)
    monkeypatch.setattr(app, "Window", _QuitWindow)
    monkeypatch.setattr(app, "check_display", lambda *a, **kw: None)
    options = _options(scene, tmp_path, stop_grace=0.5, show=True)
    assert _stop_past_the_grace(options, stuck, tmp_path).ended != "interrupted"
