"""``goatpose bench`` as a library call: every artefact through the same measurements, one record.

    record = run_bench(["export/goatpose-bl_256x192.onnx", "export/hrnet-w32_256x192.onnx"], BenchOptions())
"""

import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from goatpose_edge.bench import runs
from goatpose_edge.artefact.sidecar import sha256_of
from goatpose_edge.bench.env import LoadMeter, environment
from goatpose_edge.bench.report import BENCH_FORMAT, about, assess, speedups, utc_now
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
    repeats: int = 3  # rounds of every measurement, interleaved; the median is reported with the min..max
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
        ("--streams", options.streams != defaults.streams),
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


def check_artefacts(artefacts: List[str], options: BenchOptions) -> None:
    """What the artefacts' kinds rule out (``BenchOptionError``): --profile-ops without any .onnx to profile."""
    if options.profile_ops and not any(_is_onnx(path) for path in artefacts):
        raise BenchOptionError("--profile-ops applies to .onnx only (onnxruntime's profiler) and none of the "
                               "artefacts is one: add the .onnx the engine was built from")


def _is_onnx(path: str) -> bool:
    return path.lower().endswith(".onnx")


@dataclass
class Probe:
    """One artefact as ``estimate_seconds`` sees it, from a first timed call before the measurements."""

    open_s: float  # seconds to open and activate its runner
    call_s: Dict[int, float]  # seconds of one call per batch size it takes (after one untimed call)
    onnx: bool = False  # --profile-ops profiles it


@dataclass
class SceneProbe:
    """The --video as ``estimate_seconds`` sees it: its first frame through the detector."""

    frames: Optional[int]  # frames per stream a run reads (None: the container does not say)
    detect_s: float  # seconds of one detector call on the first frame (after one untimed call)
    persons: int  # persons the detector found on it


def estimate_seconds(probes: List[Probe], options: BenchOptions, scene: Optional[SceneProbe] = None) -> float:
    """How long ``run_bench`` will take once its runners are open, scaled from ``probes``: per repeat and artefact
    (warm-up + timed) calls per batch size; per video run and frame a detector call (every --detect-every frames)
    and one crop per person at the artefact's best per-person cost (the sequential schedule's sum: pipelined runs
    take less), plus the pose model's own persons/s and a runner per run; person batching at batch 1 and batched;
    the op profile's runs. A video of unknown length (``scene.frames`` None) adds nothing."""
    calls = options.warmup + options.iters
    total = 0.0
    for probe in probes:
        per_person = min(seconds / batch for batch, seconds in probe.call_s.items())
        total += options.repeats * calls * sum(probe.call_s.values())  # the runners are open already
        if options.profile_ops and probe.onnx:
            total += (3 + options.profile_runs) * options.profile_batch * per_person
        if scene is None:
            continue
        persons = max(1, scene.persons)
        if scene.frames:
            frame_s = scene.detect_s / options.detect_every + persons * per_person
            for config in runs.stream_configs(options.pipelines, options.detect_modes, options.workers,
                                              options.streams):
                total += options.repeats * (probe.open_s + config.streams * scene.frames * frame_s)
                total += options.iters * persons * per_person + probe.open_s
        if options.person_batching:
            single = probe.call_s.get(1, per_person)
            total += probe.open_s + options.batching_frames * (scene.detect_s + 3 * persons * (single + per_person))
    return total


def _probe_scene(options: BenchOptions) -> SceneProbe:
    import cv2

    from goatpose_edge.detection import make_detector

    capture = runs.open_video(options.video)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise GoatPoseError("no frame could be decoded from {}".format(options.video))
    frames = min(count, options.max_frames) if count > 0 and options.max_frames else (count or options.max_frames)
    with make_detector(options.detector) as detector:
        detector.detect(frame)  # untimed: a detector model's first call allocates
        start = time.perf_counter()
        found = detector.detect(frame)
        return SceneProbe(frames or None, time.perf_counter() - start, len(found))


def _measure_models(artefacts: List[str], options: BenchOptions, log) -> Tuple[List[dict], float]:
    """Every artefact opened once, a first timed call each, the estimate logged, then ``options.repeats`` rounds of
    model-only latency, each round over every artefact in turn (load from elsewhere hits all alike)."""
    with ExitStack() as stack:
        entries, probes, runners = [], [], []
        for path in artefacts:
            start = time.perf_counter()
            runner = stack.enter_context(open_runner(path, options.threads, trusted=options.trusted))
            warning = runner.pose_contract().weights_warning()
            if warning:  # speed does not depend on the weights; what the artefact would pose does
                log("{}: {}".format(os.path.basename(path), warning))
            opened = time.perf_counter() - start
            calls = runs.probe_calls(runner, options.batches)
            if not calls:
                raise GoatPoseError("{}: none of --batch {} fits its batch profile {}..{}; pick sizes in it".format(
                    path, ",".join(map(str, options.batches)), runner.min_batch, runner.max_batch))
            entry = runs.artefact_info(runner)
            entry["sha256"] = sha256_of(path)
            entries.append(entry)
            probes.append(Probe(opened, calls, _is_onnx(path)))
            runners.append(runner)
        scene = _probe_scene(options) if options.video else None
        estimate = estimate_seconds(probes, options, scene)
        log("bench: {} (from a first timed call per artefact and batch size: {} repeat{} x {} calls per batch "
            "size{}); started {}".format(
                about(estimate), options.repeats, "" if options.repeats == 1 else "s",
                options.warmup + options.iters, ", plus the video runs (unknown length)"
                if scene is not None and scene.frames is None else "", time.strftime("%H:%M")))
        rounds = [[] for _ in artefacts]  # type: List[List[dict]]
        for index in range(options.repeats):
            for entry, runner, results in zip(entries, runners, rounds):
                log("{}: model-only latency, batch {} (round {} of {}) ...".format(
                    entry["artefact"], ",".join(map(str, options.batches)), index + 1, options.repeats))
                results.append(runs.bench_model(runner, options.batches, options.warmup, options.iters))
    for entry, results in zip(entries, rounds):
        entry.update(runs.model_rounds(results))
    return entries, estimate


def run_bench(artefacts: List[str], options: BenchOptions, command: str = "",
              log: Callable[[str], None] = lambda line: None) -> dict:
    """Measure every artefact (see ``runs``); returns the ``goatpose-edge-bench/1`` record."""
    from goatpose_edge.detection import make_detector

    meter = LoadMeter()  # before anything of ours runs: the load average then is someone else's
    started = time.monotonic()
    check_options(options)
    check_artefacts(artefacts, options)
    for path in artefacts:  # every path checked before the first slow measurement
        if not os.path.isfile(path):
            raise GoatPoseError("artefact not found: {}".format(path))
    if options.video:  # a video OpenCV cannot read fails now, not after the model-only measurements
        runs.open_video(options.video).release()
    not_profiled = [os.path.basename(p) for p in artefacts if not _is_onnx(p)] if options.profile_ops else []
    if not_profiled:
        log("--profile-ops applies to .onnx only: {} not profiled".format(", ".join(not_profiled)))
    models, estimate = _measure_models(artefacts, options, log)
    frames = detections = None
    for path, entry in zip(artefacts, models):
        if options.video:
            log("{}: pipeline on {} ...".format(entry["artefact"], os.path.basename(options.video)))
            configs = runs.stream_configs(options.pipelines, options.detect_modes, options.workers, options.streams)
            engine = {"detector": options.detector, "detect_every": options.detect_every,
                      "detect_workers": options.detect_workers, "flip": options.flip, "threads": options.threads,
                      "max_persons": options.max_persons, "track_min_score": options.track_min_score}
            entry["video"] = runs.bench_stream(path, options.video, configs, engine, options.max_frames,
                                               options.repeats, options.iters, log)
        if options.person_batching:
            with open_runner(path, options.threads, trusted=options.trusted) as runner:
                if runner.min_batch > 1:
                    entry["batching_skipped"] = "the artefact's smallest batch is {}: no per-crop loop to " \
                                                "compare".format(runner.min_batch)
                else:
                    if frames is None:  # one set of frames and boxes for every artefact
                        frames = runs.read_frames(options.video, options.batching_frames)
                        with make_detector(options.detector) as detector:
                            detections = [detector.detect(frame) for frame in frames]
                    log("{}: person batching on {} frames ...".format(entry["artefact"], len(frames)))
                    entry["batching"] = runs.person_batching(runner, frames, detections)
        if options.profile_ops:
            if _is_onnx(path):
                from goatpose_edge.bench.profile import onnxruntime_op_profile

                log("{}: onnxruntime op profile ...".format(entry["artefact"]))
                entry["profile"] = onnxruntime_op_profile(path, options.profile_batch, options.profile_runs,
                                                          options.threads)
            else:
                entry["profile_skipped"] = "--profile-ops applies to .onnx only (onnxruntime's profiler)"
    settings = asdict(options)
    settings["video"] = os.path.basename(options.video) if options.video else None
    if options.baseline and not any(options.baseline in (m["artefact"], m["model"], m.get("path")) for m in models):
        log("WARNING: --baseline {} is none of the artefacts measured ({}): no ratios".format(
            options.baseline, ", ".join("{} ({})".format(m["artefact"], m["model"]) for m in models)))
    record = {"format": BENCH_FORMAT, "title": options.title, "created": utc_now(),
              "command": command or "goatpose bench " + " ".join(artefacts), "settings": settings,
              "environment": environment(options.threads), "load": meter.record(),
              "estimate_s": round(estimate, 1), "duration_s": round(time.monotonic() - started, 1),
              "models": models, "speedups": speedups(models, options.baseline)}
    record.update(assess(record))
    return record
