"""``goatpose bench`` as a library call: every artefact through the same measurements, one record.

    record = run_bench(["export/goatpose-bl_256x192.onnx", "export/hrnet-w32_256x192.onnx"], BenchOptions())
"""

import os
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

from goatpose_edge.bench import runs
from goatpose_edge.bench.env import environment
from goatpose_edge.bench.report import BENCH_FORMAT, speedups, utc_now
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime import open_runner
from goatpose_edge.video.engine import StreamOptions

#: the streaming engine's defaults, which bench --video runs with unless told otherwise
_ENGINE = StreamOptions(pose="")


@dataclass
class BenchOptions:
    batches: List[int] = field(default_factory=lambda: [1, 8])
    warmup: int = 5
    iters: int = 30
    threads: Optional[int] = None  # onnxruntime intra-op / torch threads (None: the library's default)
    video: Optional[str] = None
    max_frames: Optional[int] = None
    detector: str = _ENGINE.detector
    detect_every: int = _ENGINE.detect_every
    detect_workers: int = _ENGINE.detect_workers
    flip: bool = False
    pipelines: List[str] = field(default_factory=lambda: ["sequential", "pipelined"])
    detect_modes: List[str] = field(default_factory=lambda: ["sync"])
    workers: List[Optional[int]] = field(default_factory=lambda: [None])  # None: the backend's default
    streams: List[int] = field(default_factory=lambda: [1])
    repeats: int = 1
    max_persons: Optional[int] = None
    track_min_score: float = _ENGINE.track_min_score
    person_batching: bool = False
    batching_frames: int = 10
    profile_ops: bool = False
    profile_batch: int = 1
    profile_runs: int = 20
    baseline: Optional[str] = None
    title: str = ""
    trusted: bool = False  # a .pth may unpickle Python objects (--trust-checkpoint)


class BenchOptionError(GoatPoseError, ValueError):
    """Options that contradict each other or measure nothing (the CLI's usage errors)."""


def check_options(options: BenchOptions) -> None:
    """Refuse options that cannot be measured (``BenchOptionError``) and a video that is not there."""
    check_settings(options)
    if options.video and not os.path.isfile(options.video):
        raise GoatPoseError("video not found: {}".format(options.video))


def check_settings(options: BenchOptions) -> None:
    """The options on their own, before any file is looked at."""
    if not options.batches or any(b < 1 for b in options.batches):
        raise BenchOptionError("--batch needs positive sizes, e.g. --batch 1,8")
    if (options.max_frames is not None and options.max_frames < 1) or options.batching_frames < 1:
        raise BenchOptionError("--max-frames and --batching-frames must be >= 1")
    if options.iters < 1 or options.warmup < 0:
        raise BenchOptionError("--iters must be >= 1 and --warmup >= 0")
    if options.person_batching and not options.video:
        raise BenchOptionError("--person-batching needs --video (frames with persons)")
    defaults = BenchOptions()
    video_settings = [flag for flag, changed in (
        ("--max-frames", options.max_frames is not None),
        ("--detect-every", options.detect_every != defaults.detect_every),
        ("--flip", options.flip), ("--pipeline", options.pipelines != defaults.pipelines),
        ("--detect", options.detect_modes != defaults.detect_modes), ("--workers", options.workers != defaults.workers),
        ("--streams", options.streams != defaults.streams), ("--repeats", options.repeats != defaults.repeats),
        ("--detect-workers", options.detect_workers != defaults.detect_workers)) if changed]
    if not options.video and video_settings:
        raise BenchOptionError("{} set{} the video pipeline: add --video FILE".format(
            ", ".join(video_settings), "s" if len(video_settings) == 1 else ""))
    if any(p not in ("sequential", "pipelined") for p in options.pipelines) or not options.pipelines:
        raise BenchOptionError("--pipeline takes sequential and/or pipelined, e.g. --pipeline sequential,pipelined")
    if any(d not in ("sync", "async") for d in options.detect_modes) or not options.detect_modes:
        raise BenchOptionError("--detect takes sync and/or async, e.g. --detect sync,async")
    if "async" in options.detect_modes and options.detect_every != 1:
        raise BenchOptionError("--detect async runs the detector as often as it can: drop --detect-every")
    if not runs.stream_configs(options.pipelines, options.detect_modes, options.workers, options.streams):
        raise BenchOptionError("--pipeline {} with --detect {} is no configuration: the sequential loop detects "
                               "synchronously (add --pipeline pipelined, or --detect sync)".format(
                                   ",".join(options.pipelines), ",".join(options.detect_modes)))
    if any(w is not None and w < 1 for w in options.workers) or any(k < 1 for k in options.streams) or \
            options.repeats < 1:
        raise BenchOptionError("--workers, --streams and --repeats must be >= 1")


def run_bench(artefacts: List[str], options: BenchOptions, command: str = "",
              log: Callable[[str], None] = lambda line: None) -> dict:
    """Measure every artefact (see ``runs``); returns the ``goatpose-edge-bench/1`` record."""
    from goatpose_edge.detection import make_detector

    check_options(options)
    for path in artefacts:  # every path checked before the first slow measurement
        if not os.path.isfile(path):
            raise GoatPoseError("artefact not found: {}".format(path))
    if options.video:  # a video OpenCV cannot read fails now, not after the model-only measurements
        runs.open_video(options.video).release()
    frames = detections = None
    models = []
    for path in artefacts:
        with open_runner(path, options.threads, trusted=options.trusted) as runner:
            runner.pose_contract()
            if not any(runner.min_batch <= b and (runner.max_batch is None or b <= runner.max_batch)
                       for b in options.batches):
                raise GoatPoseError("{}: none of --batch {} fits its batch profile {}..{}; pick sizes in it".format(
                    path, ",".join(map(str, options.batches)), runner.min_batch, runner.max_batch))
            entry = runs.artefact_info(runner)
            log("{}: model-only latency, batch {} ...".format(entry["artefact"], ",".join(map(str, options.batches))))
            entry.update(runs.bench_model(runner, options.batches, options.warmup, options.iters))
            if options.video:
                log("{}: pipeline on {} ...".format(entry["artefact"], os.path.basename(options.video)))
                configs = runs.stream_configs(options.pipelines, options.detect_modes, options.workers,
                                              options.streams)
                engine = {"detector": options.detector, "detect_every": options.detect_every,
                          "detect_workers": options.detect_workers, "flip": options.flip, "threads": options.threads,
                          "max_persons": options.max_persons, "track_min_score": options.track_min_score}
                entry["video"] = runs.bench_stream(path, options.video, configs, engine, options.max_frames,
                                                   options.repeats, options.iters, log)
            if options.person_batching and runner.min_batch > 1:
                entry["batching_skipped"] = "the artefact's smallest batch is {}: no per-crop loop to compare".format(
                    runner.min_batch)
            elif options.person_batching:
                if frames is None:  # one set of frames and boxes for every artefact
                    frames = runs.read_frames(options.video, options.batching_frames)
                    with make_detector(options.detector) as detector:
                        detections = [detector.detect(frame) for frame in frames]
                log("{}: person batching on {} frames ...".format(entry["artefact"], len(frames)))
                entry["batching"] = runs.person_batching(runner, frames, detections)
        if options.profile_ops:
            if path.lower().endswith(".onnx"):
                from goatpose_edge.bench.profile import onnxruntime_op_profile

                log("{}: onnxruntime op profile ...".format(entry["artefact"]))
                entry["profile"] = onnxruntime_op_profile(path, options.profile_batch, options.profile_runs,
                                                          options.threads)
            else:
                entry["profile_skipped"] = "the op profile uses onnxruntime: give the .onnx"
        models.append(entry)
    settings = asdict(options)
    settings["video"] = os.path.basename(options.video) if options.video else None
    if options.baseline and not any(options.baseline in (m["artefact"], m["model"], m.get("path")) for m in models):
        log("WARNING: --baseline {} is none of the artefacts measured ({}): no ratios".format(
            options.baseline, ", ".join("{} ({})".format(m["artefact"], m["model"]) for m in models)))
    return {"format": BENCH_FORMAT, "title": options.title, "created": utc_now(),
            "command": command or "goatpose bench " + " ".join(artefacts), "settings": settings,
            "environment": environment(options.threads),
            "models": models, "speedups": speedups(models, options.baseline)}
