"""The measurements ``goatpose bench`` makes, each on an active runner:

- ``bench_model``: model-only latency per batch size (``timing.time_runner``); ``model_rounds`` keeps the median of
  several rounds and their spread;
- ``bench_stream``: ``goatpose video``'s streaming engine on a video, per configuration (sequential or pipelined,
  sync or async detection, pose workers, streams): end-to-end fps and persons/s, busy time and utilisation per stage,
  the pose model's own persons/s with the same workers and batch, and the ratio of the two;
- ``person_batching``: the same frames and boxes through the batched pipeline and through a per-crop loop (how
  rtmlib runs its crops), persons/s of each.

Network time is ``infer`` (+ ``copy_in``/``copy_out`` on TensorRT); the detector is reported on its own, since it is
a replaceable part (HOG on the CPU costs more than the pose network); "overhead" is everything else.
"""

import os
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import numpy as np

from goatpose_edge.bench.timing import LatencyStats, time_runner
from goatpose_edge.errors import GoatPoseError


def artefact_info(runner) -> Dict[str, object]:
    """Name, backend, model, precision and complexity of the runner's artefact, as the runner describes it (from
    its metadata, sidecar or checkpoint)."""
    return dict(runner.description())


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


def model_rounds(rounds: List[Dict[str, object]]) -> Dict[str, object]:
    """One ``bench_model`` result from the results of several rounds: per batch size the row of the median round (by
    images/s, the upper median for an even count), with ``repeats`` and ``images_per_s_spread`` = {median, min, max
    images/s over the rounds, pct: (max - min) / median x 100}."""
    if not rounds:
        raise ValueError("no rounds to combine")
    rows = []
    for first in rounds[0]["latency"]:
        same = sorted((next(r for r in result["latency"] if r["batch"] == first["batch"]) for result in rounds),
                      key=lambda r: r["images_per_s"])
        values = [r["images_per_s"] for r in same]
        median = float(np.median(values))
        row = dict(same[len(same) // 2], repeats=len(same))
        row["images_per_s_spread"] = {"median": round(median, 3), "min": values[0], "max": values[-1],
                                      "pct": round(100 * (values[-1] - values[0]) / median, 1) if median else None}
        rows.append(row)
    return {"latency": rows, "skipped": rounds[0]["skipped"]}


def probe_calls(runner, batches) -> Dict[int, float]:
    """Seconds of one call per batch size of ``batches`` the runner takes, after one untimed call (allocations, lazy
    initialisation): what ``suite.estimate_seconds`` scales to the configured iterations."""
    return {batch: time_runner(runner, batch, warmup=1, iters=1).mean_ms / 1e3 for batch in batches
            if runner.min_batch <= batch and (runner.max_batch is None or batch <= runner.max_batch)}


@dataclass
class StreamConfig:
    """One configuration of the streaming engine that ``goatpose bench --video`` times."""

    pipeline: str = "pipelined"  # sequential | pipelined
    detect: str = "sync"  # sync | async
    workers: Optional[int] = None  # None: the backend's default
    streams: int = 1  # the video replayed this many times side by side

    @property
    def name(self) -> str:
        return "{} {} detect, {} worker{}, {} stream{}".format(
            self.pipeline, self.detect, "auto" if self.workers is None else self.workers,
            "" if self.workers == 1 else "s", self.streams, "" if self.streams == 1 else "s")


def stream_configs(pipelines, detects, workers, streams) -> List[StreamConfig]:
    """Every combination, once: the sequential loop has one worker and synchronous detection."""
    configs, seen = [], set()
    for pipeline in pipelines:
        for detect in detects:
            for count in workers:
                for stream_count in streams:
                    config = StreamConfig(pipeline, detect, count, stream_count)
                    if pipeline == "sequential":
                        if detect == "async":
                            continue
                        config.workers = 1
                    key = (config.pipeline, config.detect, config.workers, config.streams)
                    if key not in seen:
                        seen.add(key)
                        configs.append(config)
    return configs


def stream_run(path: str, video: str, config: StreamConfig, engine_options: dict,
               max_frames: Optional[int] = None, draw: bool = True) -> Dict[str, object]:
    """One pass of the streaming engine over ``video`` (``config.streams`` copies) with the overlay drawn on each
    frame as ``goatpose video`` does (not written); figures of the run."""
    from goatpose_edge.draw import draw_persons
    from goatpose_edge.video.app import resident_mb
    from goatpose_edge.video.engine import StreamEngine, StreamOptions
    from goatpose_edge.video.results import FrameResult

    options = StreamOptions(pose=path, detect=config.detect, workers=config.workers,
                            sequential=config.pipeline == "sequential", max_frames=max_frames, **engine_options)
    frames = persons = 0
    memory = []
    with StreamEngine([video] * config.streams, options) as engine:
        for event in engine.events():
            if not isinstance(event, FrameResult):
                continue
            if draw:
                start = time.perf_counter()
                draw_persons(event.image.copy(), event.persons, engine.contract.skeleton, fps=frames / max(
                    engine.elapsed, 1e-9), ids=event.ids)
                engine.add_busy("sink", time.perf_counter() - start)
            frames += 1
            persons += len(event.persons)
            if frames % 50 == 0:
                memory.append([frames, resident_mb()])
        streams = [s.stats for s in engine.streams]
    stats = engine.stats
    memory.append([frames, resident_mb()])
    if frames == 0:
        raise GoatPoseError("no frame could be decoded from {}".format(video))
    wall = stats.wall_s
    runs = sum(s.detector_runs for s in streams)
    utilisation = stats.utilisation()
    busiest = max(utilisation, key=utilisation.get) if utilisation else None
    return dict(stats.to_dict(), frames=frames, persons=persons, fps=round(frames / wall, 3),
                busiest={"stage": busiest, "utilisation": utilisation.get(busiest, 0.0)},
                persons_per_s=round(persons / wall, 3), detector_runs=runs, detector_per_s=round(runs / wall, 3),
                rss_mb=memory)


def pose_throughput(path: str, workers: int, threads: Optional[int], batch: int, iters: int = 10,
                    seed: int = 0) -> Dict[str, object]:
    """The pose model's own persons/s with ``workers`` runners side by side, each calling ``infer`` on a random
    batch of ``batch`` crops ``iters`` times (one untimed call first): what the engine's pose stage could do."""
    import threading

    from goatpose_edge.runtime import open_runner

    prototype = open_runner(path)
    threads = threads or prototype.worker_threads(workers)
    runners = [prototype.spawn(threads) for _ in range(workers)]
    errors = []
    try:
        for runner in runners:
            runner.activate()
        shape = (batch,) + tuple(d if d is not None else 1 for d in runners[0].expected_chw())
        data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        for runner in runners:
            runner.infer(data)
            runner.synchronize()

        def work(runner):
            try:
                for _ in range(iters):
                    runner.infer(data)
                    runner.synchronize()
            except Exception as exc:  # noqa: BLE001 - raised below, in the caller's thread
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(r,)) for r in runners]
        start = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        for runner in runners:
            runner.deactivate()
    if errors:
        raise errors[0]
    return {"workers": workers, "threads": threads, "batch": batch, "iters": iters, "wall_s": round(wall, 4),
            "persons_per_s": round(workers * iters * batch / wall, 3)}


def _spread(values) -> Dict[str, float]:
    values = sorted(values)
    return {"median": round(float(np.median(values)), 3), "min": round(values[0], 3), "max": round(values[-1], 3)}


def bench_stream(path: str, video: str, configs: List[StreamConfig], engine_options: dict,
                 max_frames: Optional[int] = None, repeats: int = 1, model_iters: int = 10,
                 log=lambda line: None) -> Dict[str, object]:
    """Every configuration over the same frames, interleaved ``repeats`` times (load from elsewhere on the machine
    hits all alike), then the pose model's own persons/s with each configuration's workers and batch; per
    configuration the median run's figures, the spread of fps and persons/s, and end-to-end / model-only."""
    runs = {i: [] for i in range(len(configs))}
    for round_index in range(repeats):
        for index, config in enumerate(configs):
            log("  {} (round {} of {}) ...".format(config.name, round_index + 1, repeats))
            runs[index].append(stream_run(path, video, config, engine_options, max_frames))
    results = []
    for index, config in enumerate(configs):
        passes = runs[index]
        median = sorted(passes, key=lambda r: r["fps"])[len(passes) // 2]
        per_frame = median["persons"] / max(1, median["frames"])
        batch = int(max(1, min(median["max_batch"], round(per_frame)))) if per_frame else 1
        model = pose_throughput(path, median["workers"], engine_options.get("threads"), batch, model_iters)
        record = asdict(config)
        record.update(median)
        record.update({"name": config.name, "runs": len(passes), "fps_spread": _spread([r["fps"] for r in passes]),
                       "persons_per_s_spread": _spread([r["persons_per_s"] for r in passes]),
                       "model_persons_per_s": model["persons_per_s"], "model": model,
                       "end_to_end_vs_model": round(median["persons_per_s"] / model["persons_per_s"], 3)
                       if model["persons_per_s"] else None})
        results.append(record)
    summary = {"video": os.path.basename(video), "frames_per_stream": max_frames, "repeats": repeats,
               "configs": results}
    sequential = [r for r in results if r["pipeline"] == "sequential" and r["streams"] == 1]
    if sequential:
        base = sequential[0]["fps"]
        for record in results:
            record["fps_vs_sequential"] = round(record["fps"] / base, 3) if base else None
    return summary


def open_video(path: str):
    import cv2

    if not os.path.isfile(path):
        raise GoatPoseError("video not found: {}".format(path))
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise GoatPoseError("OpenCV cannot open the video {} (unknown container or codec)".format(path))
    return capture


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


__all__ = ["LatencyStats", "StreamConfig", "artefact_info", "bench_model", "bench_stream", "model_rounds",
           "person_batching", "pose_throughput", "probe_calls", "read_frames", "stream_configs", "stream_run"]
