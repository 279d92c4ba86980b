"""The measurements ``goatpose bench`` makes, each on an active runner:

- ``bench_model``: model-only latency per batch size (``timing.time_runner``);
- ``bench_video``: the whole pipeline on a video, per stage (decode, detect, preprocess, [copy_in,] infer,
  [copy_out,] postprocess, draw) and end to end;
- ``person_batching``: the same frames and boxes through the batched pipeline and through a per-crop loop (how
  rtmlib runs its crops), persons/s of each.

Network time is ``infer`` (+ ``copy_in``/``copy_out`` on TensorRT); the detector is reported on its own, since it is
a replaceable part (HOG on the CPU costs more than the pose network); "overhead" is everything else.
"""

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np

from goatpose_edge.bench.timing import LatencyStats, StageTimer, time_runner
from goatpose_edge.errors import GoatPoseError

NETWORK_STAGES = ("copy_in", "infer", "copy_out")


def artefact_info(runner) -> Dict[str, object]:
    """Name, backend, precision and complexity of the runner's artefact (from its metadata or sidecar)."""
    from goatpose_edge.onnx_meta import read_complexity

    info = {"artefact": os.path.basename(runner.path), "path": runner.path, "backend": runner.backend,
            "model": runner.contract.name, "input_size": list(runner.contract.input_size),
            "precision": "fp32", "complexity": None}  # type: Dict[str, object]
    if runner.backend == "onnxruntime":
        info["complexity"] = read_complexity(runner.path)
        info["providers"] = list(getattr(runner, "providers", None) or [])
    elif runner.backend == "torch":  # torch is already loaded by this runner: measure as `goatpose info` does
        from goatpose_edge.models import build_model
        from goatpose_edge.models.complexity import complexity_record, measure
        from goatpose_edge.variants import get_variant

        info["complexity"] = complexity_record(measure(get_variant(runner.contract.name),
                                                       build_model(runner.contract.name)))
    elif runner.backend == "tensorrt":
        info["precision"] = runner.sidecar.effective_precision
        info["complexity"] = runner.sidecar.complexity
    return info


def bench_model(runner, batches, warmup: int, iters: int) -> Dict[str, object]:
    """Latency per batch size; sizes outside the runner's profile are listed as skipped, not measured."""
    rows, skipped = [], []
    for batch in batches:
        if batch < runner.min_batch or (runner.max_batch is not None and batch > runner.max_batch):
            skipped.append({"batch": batch, "reason": "outside the artefact's batch profile {}..{}".format(
                runner.min_batch, runner.max_batch)})
            continue
        rows.append(time_runner(runner, batch, warmup, iters).to_dict())
    return {"latency": rows, "skipped": skipped}


@dataclass
class VideoRun:
    """One pass of the pipeline over a video (times in seconds)."""

    video: str
    frames: int
    persons: int
    total_s: float
    stages: Dict[str, Dict[str, float]] = field(default_factory=dict)  # StageTimer.summary()

    @property
    def network_s(self) -> float:
        return sum(self.stages.get(s, {}).get("total_s", 0.0) for s in NETWORK_STAGES)

    @property
    def detect_s(self) -> float:
        return self.stages.get("detect", {}).get("total_s", 0.0)

    def to_dict(self) -> dict:
        record = asdict(self)
        total = self.total_s or float("nan")
        record.update({
            "fps": round(self.frames / total, 3), "persons_per_frame": round(self.persons / max(self.frames, 1), 2),
            "persons_per_s": round(self.persons / total, 3),
            "network_pct": round(100 * self.network_s / total, 2), "detect_pct": round(100 * self.detect_s / total, 2),
            "overhead_pct": round(100 * (total - self.network_s - self.detect_s) / total, 2)})
        return record


def open_video(path: str):
    import cv2

    if not os.path.isfile(path):
        raise GoatPoseError("video not found: {}".format(path))
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise GoatPoseError("OpenCV cannot open the video {} (unknown container or codec)".format(path))
    return capture


def bench_video(runner, video: str, detector, max_frames: Optional[int] = None, flip: bool = False,
                draw: bool = True) -> VideoRun:
    """Run the pipeline over ``video`` (up to ``max_frames``) with per-stage timing; the overlay is drawn on each
    frame as ``goatpose video`` would (``draw``), not written."""
    from goatpose_edge.draw import draw_persons
    from goatpose_edge.pipeline import TopDownPoseEstimator

    timer = StageTimer()
    estimator = TopDownPoseEstimator(detector, runner, flip=flip, timer=timer)
    capture = open_video(video)
    frames = persons = 0
    start = time.perf_counter()
    try:
        while max_frames is None or frames < max_frames:
            with timer("decode"):
                ok, frame = capture.read()
            if not ok:
                break
            found = estimator(frame)
            if draw:
                with timer("draw"):
                    draw_persons(frame, found, runner.contract.skeleton, fps=frames / max(time.perf_counter() - start,
                                                                                           1e-9))
            frames += 1
            persons += len(found)
    finally:
        capture.release()
    total = time.perf_counter() - start
    if frames == 0:
        raise GoatPoseError("no frame could be decoded from {}".format(video))
    return VideoRun(os.path.basename(video), frames, persons, round(total, 4), timer.summary())


def read_frames(video: str, max_frames: int) -> List[np.ndarray]:
    capture = open_video(video)
    frames = []
    try:
        while len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise GoatPoseError("no frame could be decoded from {}".format(video))
    return frames


def person_batching(runner, frames: List[np.ndarray], detections: List, repeats: int = 3) -> Dict[str, object]:
    """Persons/s of the batched pipeline (its default batching) vs a per-crop loop (batch 1), on the same frames and
    boxes (``detections`` per frame); everything but detection is timed. The two modes alternate ``repeats`` times
    and each keeps its fastest pass, so load from elsewhere on the machine hits both alike. One untimed warm-up
    frame per mode."""
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime.base import DEFAULT_MAX_BATCH

    persons = sum(len(d) for d in detections)
    if persons == 0:
        raise GoatPoseError("no person was detected in the frames: person batching needs persons")
    modes = (("per_crop", TopDownPoseEstimator(None, runner, max_batch=1)), ("batched", TopDownPoseEstimator(
        None, runner)))
    busiest = int(np.argmax([len(d) for d in detections]))
    for _, estimator in modes:
        estimator.estimate(frames[busiest], detections[busiest])  # warm-up (allocations, ORT's shape caches)
    best = {name: float("inf") for name, _ in modes}
    for _ in range(repeats):
        for name, estimator in modes:
            start = time.perf_counter()
            for frame, found in zip(frames, detections):
                estimator.estimate(frame, found)
            best[name] = min(best[name], time.perf_counter() - start)
    result = {"frames": len(frames), "persons": persons, "repeats": repeats}  # type: Dict[str, object]
    for name, estimator in modes:
        result[name] = {"seconds": round(best[name], 4), "persons_per_s": round(persons / best[name], 3),
                        "max_batch": estimator.max_batch or runner.max_batch or DEFAULT_MAX_BATCH}
    result["speedup"] = round(result["batched"]["persons_per_s"] / result["per_crop"]["persons_per_s"], 3)
    return result


__all__ = ["LatencyStats", "VideoRun", "artefact_info", "bench_model", "bench_video", "person_batching",
           "read_frames"]
