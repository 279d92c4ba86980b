"""Timing primitives: percentiles of known durations, stage sums, and that a runner's device work is waited for."""

import threading
import time

import numpy as np
import pytest

from goatpose_edge.bench.runs import bench_model, probe_calls
from goatpose_edge.bench.report import about
from goatpose_edge.bench.suite import BenchOptions, Probe, SceneProbe, estimate_seconds
from goatpose_edge.bench.timing import latency_stats, time_runner
from goatpose_edge.timing import StageTimer
from goatpose_edge.runtime.base import Runner
from goatpose_edge.variants import VARIANTS

DEVICE_WORK_S = 0.03


class AsyncRunner(Runner):
    """``infer`` returns at once while its 'device' works on for 30 ms in a thread; ``synchronize`` waits for it
    (the shape of a CUDA runner that only enqueues). ``honest=False`` forgets to wait."""

    backend = "async-fake"

    def __init__(self, honest=True, max_batch=None):
        super().__init__("async-fake")
        self.contract = VARIANTS["goatpose-bl"].contract
        self.honest = honest
        self.max_batch = max_batch
        self.pending = None

    def _activate(self):
        pass

    def _deactivate(self):
        pass

    def _infer(self, batch):
        self.pending = threading.Thread(target=time.sleep, args=(DEVICE_WORK_S,))
        self.pending.start()
        return np.zeros((len(batch), 17, 64, 48), np.float32)

    def synchronize(self):
        if self.honest and self.pending is not None:
            self.pending.join()


def test_latency_statistics_of_known_durations():
    stats = latency_stats([0.010] * 98 + [0.020, 0.030], batch=4, warmup=2)
    assert stats.iters == 100 and stats.batch == 4 and stats.warmup == 2
    assert stats.p50_ms == pytest.approx(10.0) and stats.p90_ms == pytest.approx(10.0)
    assert stats.p99_ms == pytest.approx(20.1, abs=0.01)  # numpy's linear interpolation between 20 and 30 ms
    assert stats.mean_ms == pytest.approx(10.3) and stats.min_ms == pytest.approx(10.0)
    assert stats.images_per_s == pytest.approx(4 / 0.0103, rel=1e-4)


def test_stage_timer_sums_per_stage_in_first_seen_order():
    timer = StageTimer()
    timer.add("infer", 0.5)
    with timer("decode"):
        time.sleep(0.01)
    timer.add("infer", 0.25)
    summary = timer.summary()
    assert list(summary) == ["infer", "decode"]
    assert summary["infer"] == {"total_s": 0.75, "mean_ms": 375.0, "count": 2}
    assert summary["decode"]["total_s"] >= 0.01 and summary["decode"]["count"] == 1


def test_time_runner_waits_for_the_device():
    with AsyncRunner(honest=True) as runner:
        stats = time_runner(runner, batch=1, warmup=1, iters=5)
    assert stats.min_ms >= 1e3 * DEVICE_WORK_S
    with AsyncRunner(honest=False) as runner:  # the control: without the wait the fake's calls look instant
        stats = time_runner(runner, batch=1, warmup=1, iters=5)
    assert stats.p50_ms < 1e3 * DEVICE_WORK_S / 2


def test_batches_outside_the_profile_are_skipped_not_measured():
    with AsyncRunner(max_batch=2) as runner:
        result = bench_model(runner, [1, 2, 4], warmup=0, iters=1)
    assert [row["batch"] for row in result["latency"]] == [1, 2]
    assert result["skipped"] == [{"batch": 4, "reason": "outside the artefact's batch profile 1..2"}]


def test_probe_times_one_call_per_batch_the_runner_takes():
    with AsyncRunner(max_batch=2) as runner:
        calls = probe_calls(runner, [1, 2, 4])
    assert sorted(calls) == [1, 2]  # 4 is outside the profile: not probed
    assert all(DEVICE_WORK_S <= seconds < 10 * DEVICE_WORK_S for seconds in calls.values())


def test_estimate_scales_the_first_calls_to_the_configured_work():
    bl, w32 = Probe(0.5, {1: 0.01, 8: 0.04}, onnx=True), Probe(2.0, {1: 0.05, 8: 0.2})
    options = BenchOptions(warmup=5, iters=30, repeats=3)
    # 3 repeats x 35 calls x (0.05 + 0.25) s; the runners are open already
    assert estimate_seconds([bl, w32], options) == pytest.approx(3 * 35 * 0.30)
    profiled = BenchOptions(warmup=5, iters=30, repeats=3, profile_ops=True)  # bl's 23 profile runs at 5 ms a person
    assert estimate_seconds([bl, w32], profiled) == pytest.approx(3 * 35 * 0.30 + 23 * 0.005)
    video = BenchOptions(warmup=0, iters=10, repeats=2, video="v.avi", pipelines=["sequential"])
    scene = SceneProbe(frames=20, detect_s=0.1, persons=4)
    # model only 2 x 10 x 0.05; per run: an open + 20 frames x (0.1 s detector + 4 persons x 5 ms); the model
    # alone: 10 calls x 4 persons x 5 ms + an open
    assert estimate_seconds([bl], video, scene) == pytest.approx(
        2 * 10 * 0.05 + 2 * (0.5 + 20 * (0.1 + 4 * 0.005)) + 10 * 4 * 0.005 + 0.5)
    unknown = SceneProbe(frames=None, detect_s=0.1, persons=4)  # a video of unknown length adds nothing
    assert estimate_seconds([bl], video, unknown) == pytest.approx(2 * 10 * 0.05)
    assert [about(s) for s in (3, 42, 89, 90, 480)] == ["about 5 seconds", "about 40 seconds", "about 90 seconds",
                                                       "about 2 minutes", "about 8 minutes"]
