"""Model-only latency of a runner (the stage timers are ``goatpose_edge.timing``).

Every timed call ends with ``runner.synchronize()``: a runner whose ``infer`` returns before its device has finished
(the Runner contract allows it) is still measured to the end of its work.
"""

import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class LatencyStats:
    """Model-only latency of one runner at one batch size (milliseconds per call; throughput in images/s)."""

    batch: int
    iters: int
    warmup: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def latency_stats(seconds, batch: int, warmup: int) -> LatencyStats:
    """Statistics of per-call durations ``seconds`` [iters] for a batch of ``batch`` images."""
    ms = 1e3 * np.asarray(seconds, dtype=np.float64)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(batch=batch, iters=len(ms), warmup=warmup, mean_ms=round(float(ms.mean()), 4),
                        p50_ms=round(float(p50), 4), p90_ms=round(float(p90), 4), p99_ms=round(float(p99), 4),
                        min_ms=round(float(ms.min()), 4), images_per_s=round(1e3 * batch / float(ms.mean()), 3))


def time_runner(runner, batch: int, warmup: int = 5, iters: int = 30, seed: int = 0) -> LatencyStats:
    """Latency of ``runner.infer`` on a seeded random batch [batch, 3, H, W]: ``warmup`` untimed calls, then
    ``iters`` calls each timed from the call to the end of ``runner.synchronize()``."""
    if warmup < 0 or iters < 1:
        raise ValueError("need warmup >= 0 and iters >= 1, got {} and {}".format(warmup, iters))
    shape = (batch,) + tuple(d if d is not None else 1 for d in runner.expected_chw())
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        runner.infer(data)
        runner.synchronize()
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        runner.infer(data)
        runner.synchronize()
        seconds.append(time.perf_counter() - start)
    return latency_stats(seconds, batch, warmup)
