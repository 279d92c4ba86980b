"""The streaming engine over its option matrix on a synthetic scene (the dot pose model, the figure detector):
every row finishes within a bound with every frame in order; with synchronous detection the records are a function
of the input and the options alone (identical for any workers, detector workers and streams, and equal to the
sequential schedule); --detect-every runs the detector on exactly the frames its rule names. The same rows again
with the interpreter switching threads every microsecond, to shake out races."""

import json
import sys
import threading

import pytest

from goatpose_edge.detection.reuse import carried_boxes
from goatpose_edge.synthetic import build_dot_pose_onnx, single, walkers, write_scene
from goatpose_edge.video.engine import StreamEngine, StreamOptions
from goatpose_edge.video.results import FrameResult, StreamEnd

FRAMES = 12
#: seconds a row may take before it counts as a hang (a row takes about 1 s here)
BOUND_S = 60


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("matrix")
    video = str(folder / "walkers.avi")
    write_scene(video, video + ".truth.jsonl", walkers(frames=FRAMES, width=320, height=180, seed=3))
    # one figure that walks out of the frame half-way: nobody is followed after it, so the detector runs again
    leaving = str(folder / "leaving.avi")
    write_scene(leaving, leaving + ".truth.jsonl", single(frames=24, width=320, height=180, velocity_xy=(16.0, 0.0),
                                                          seed=4))
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), video, leaving


def run_bounded(sources, options):
    """[(stream, record or ("end", stats))] of one engine run, in the order handed out; fails on a hang."""
    out, errors = [], []

    def run():
        try:
            with StreamEngine(sources, options) as engine:
                for event in engine.events():
                    if isinstance(event, FrameResult):
                        out.append((event.stream, event))
                    else:
                        assert isinstance(event, StreamEnd)
                        out.append((event.stream, event.stats))
            out.append(("threads", engine.running_threads))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), "the engine hung: {}".format(
        [t.name for t in threading.enumerate() if t.name.startswith("goatpose")])
    if errors:
        raise errors[0]
    assert out.pop() == ("threads", [])  # every stage joined
    return out


def records(events, stream):
    """The stream's records as JSON lines, and its stats; every frame once, in order, then its end."""
    mine = [e for s, e in events if s == stream]
    frames, stats = mine[:-1], mine[-1]
    assert [f.index for f in frames] == list(range(FRAMES)), [f.index for f in frames]
    assert stats.frames == stats.frames_in == FRAMES and stats.ended == "end"
    return [json.dumps(f.record(), sort_keys=True) for f in frames], stats


def rows(detect):
    for every in ((1,) if detect == "async" else (1, 3)):
        for detect_workers in (1, 2, 3):
            for workers in (1, 2):
                for streams in (1, 2):
                    if detect == "async" and detect_workers > streams:
                        continue  # refused: one detector per stream at a time
                    yield every, detect_workers, workers, streams


_SEQUENTIAL = {}


def sequential(onnx, video, every):
    if every not in _SEQUENTIAL:
        events = run_bounded([video], StreamOptions(onnx, detector="figures", detect_every=every, sequential=True))
        _SEQUENTIAL[every] = records(events, 0)
    return _SEQUENTIAL[every]


def shaken(rows, busiest):
    """Every row as it is, then the ``busiest`` rows (the most threads) with the interpreter switching threads
    every microsecond."""
    rows = list(rows)
    return [(False,) + r for r in rows] + [(True,) + r for r in rows if busiest(r)]


def _switching(shake):
    if not shake:
        return None
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    return previous


@pytest.mark.parametrize("shake, every, detect_workers, workers, streams", shaken(rows("sync"), lambda r: r[1:3] == (3, 2)))
def test_sync_rows_give_the_sequential_records(scene, shake, every, detect_workers, workers, streams):
    onnx, video, _ = scene
    expected, expected_stats = sequential(onnx, video, every)
    previous = _switching(shake)
    try:
        events = run_bounded([video] * streams, StreamOptions(onnx, detector="figures", detect_every=every,
                                                              detect_workers=detect_workers, workers=workers))
    finally:
        if previous is not None:
            sys.setswitchinterval(previous)
    for stream in range(streams):
        lines, stats = records(events, stream)
        assert lines == expected  # byte for byte
        assert stats.detector_runs == expected_stats.detector_runs
    assert sum(len(json.loads(line)["persons"]) for line in expected) >= 2 * FRAMES  # the scene has persons


@pytest.mark.parametrize("shake, every, detect_workers, workers, streams", shaken(rows("async"), lambda r: r[2] == 2))
def test_async_rows_finish_with_every_frame_in_order(scene, shake, every, detect_workers, workers, streams):
    onnx, video, _ = scene
    previous = _switching(shake)
    try:
        events = run_bounded([video] * streams, StreamOptions(onnx, detector="figures", detect="async",
                                                              detect_workers=detect_workers, workers=workers))
    finally:
        if previous is not None:
            sys.setswitchinterval(previous)
    for stream in range(streams):
        _, stats = records(events, stream)
        assert 1 <= stats.detector_runs <= FRAMES  # each admitted frame is offered once at most


@pytest.mark.parametrize("every", [2, 3, 5])
def test_detect_every_runs_the_detector_on_exactly_the_frames_of_its_rule(scene, every):
    """Frames 0, N, 2N, ... and every frame into which nobody is followed (the figure left)."""
    onnx, _, leaving = scene
    events = run_bounded([leaving, leaving], StreamOptions(onnx, detector="figures", detect_every=every,
                                                           detect_workers=2, workers=2))
    for stream in (0, 1):
        mine = [e for s, e in events if s == stream]
        frames, stats = mine[:-1], mine[-1]
        followed = [len(carried_boxes(f.persons)) > 0 for f in frames]
        expected = sum(1 for i in range(len(frames)) if i % every == 0 or not followed[i - 1])
        assert stats.detector_runs == expected
        assert expected > -(-len(frames) // every)  # the rule's second clause happened: the figure left
        assert any(followed) and not followed[-1]
