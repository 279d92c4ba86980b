"""Stage timers, the clock every layer may use: ``with timer("detect"): ...`` or ``timer.add("infer", s)``.

    StageTimer    every sample per stage (benchmarks: means, counts, spreads)
    StageTotals   totals only, thread-safe (the streaming engine: memory stays flat on a camera running for days)
    NullTimer     no clock reads at all (the pipeline when nobody measures)

Device side, standard library + numpy; the pipeline, the streaming engine and the benchmarks import it from here.
"""

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, List

import numpy as np


class StageTimer:
    """Wall time per named stage, in call order: ``with timer("detect"): ...`` or ``timer.add("infer", s)``."""

    def __init__(self):
        self.samples = OrderedDict()  # type: Dict[str, List[float]]

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, []).append(seconds)

    def total(self, stage: str) -> float:
        return float(sum(self.samples.get(stage, ())))

    def summary(self) -> Dict[str, Dict[str, float]]:
        """{stage: {"total_s", "mean_ms", "count"}} in first-seen order."""
        return OrderedDict((stage, {"total_s": round(float(sum(s)), 6), "mean_ms": round(1e3 * float(np.mean(s)), 3),
                                    "count": len(s)}) for stage, s in self.samples.items())


class NullTimer:
    """The timer the pipeline uses when nobody measures: no clock reads at all."""

    @contextmanager
    def __call__(self, stage: str):
        yield

    def add(self, stage: str, seconds: float) -> None:
        pass


class StageTotals:
    """Seconds per named stage as totals only, thread-safe: what a stream running for days can keep (the streaming
    engine's timer of each pose worker). Same calls as ``StageTimer``."""

    def __init__(self):
        self.totals = OrderedDict()  # type: Dict[str, float]
        self.lock = threading.Lock()

    def __call__(self, stage: str):
        return _Span(self, stage)

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.totals[stage] = self.totals.get(stage, 0.0) + seconds


class _Span:
    def __init__(self, times: StageTotals, stage: str):
        self.times, self.stage = times, stage

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.times.add(self.stage, time.perf_counter() - self.start)
