"""The streaming engine: pose on one or many video sources, every stage in its own threads, frames in order.

    with StreamEngine(["cam.mp4", "0"], StreamOptions(pose="export/goatpose-bl_256x192.onnx")) as engine:
        for result in engine:                   # FrameResult per frame, in order within each stream
            print(result.stream, result.index, len(result.persons), result.ids)

The stages (``_declare``: each once, with its work, threads and inbox; ``video.stages`` holds their work)::

    capture (1 per source) -> feed (1 per source) -> detect (``detect_workers``) -> crop (1)
        -> pose (``workers`` runners, person crops batched across frames and streams) -> post (1: decode, follow,
        track, smooth) -> the caller (``next_event``; ``video.sinks`` fan the results out to the outputs)

Threads hand work over through ``flow.Channel``s with end markers; each stream admits at most ``window`` frames at a
time (``flow.Window``: a frame's slot is freed when the caller takes its result), so every channel behind the feed
is unbounded without growing memory and no stage waits for room in another. Files never drop a frame (the feed
waits for a slot); live sources keep the newest frame and count what they drop (``capture.FrameReader``).
``detect="sync"``: the detector runs on the frames it poses (``detect_every`` N > 1: on the frames
``detection.reuse.detector_due`` names; persons are followed by their keypoints in between). ``detect="async"``: the
detector runs beside the pipeline on the newest frame of each stream (``flow.NewestFrames``), and each frame is
posed on the boxes followed from the frame before merged with the latest detections (new persons enter there).
With synchronous detection on files the results are a function of the input and the options alone, whatever the
workers: order is restored per stream before crop and post, and every decision reads state that is final then.
``sequential=True`` runs the same stage functions one after another in the caller's thread (``goatpose bench``
compares it).

Exit paths: ``stop()`` (Ctrl-C, ``q``, SIGTERM, --max-frames) admits no more frames and lets the frames in flight
come out, each stream's end marker behind them (``stop(grace)`` bounds the wait: ``StopTimeout`` names the stage
that did not finish); an exception in any stage aborts every channel, so every waiting thread leaves at once,
and the iterator raises ``StreamError``; ``abort()`` does the same without an error. ``close()`` joins every thread
within ``JOIN_GRACE_S`` (``stats.stuck`` names a stage still inside a native call; its daemon thread is left, and
the runner or detector it holds is never freed under it: each worker releases its own as it leaves). A source that
cannot be opened fails the constructor (the others are released); a stream lost mid-run ends with a ``StreamEnd``
whose stats say "lost", while the others go on.
"""

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Union

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime.base import DEFAULT_MAX_BATCH
from goatpose_edge.timing import StageTotals
from goatpose_edge.video.capture import FrameReader
from goatpose_edge.video.flow import END, Aborted, Channel, NewestFrames, Stage, Window, run_stage
from goatpose_edge.video.results import STAGES, EngineStats, FrameResult, StreamEnd, StreamStats
from goatpose_edge.video.smoothing import OneEuroOptions
from goatpose_edge.video.sources import CsiOptions, SourceError, open_capture, parse_source
from goatpose_edge.video.stages import Stages, merge_boxes  # noqa: F401 - merge_boxes: part of the engine's API

#: seconds the threads get to leave once the engine aborts or closes (a thread inside a native call leaves when it
#: returns; past this it is reported in ``stats.stuck`` and left to its daemon thread)
JOIN_GRACE_S = 2.0

#: seconds a stop waits for the frames in flight by default (``goatpose video``: SIGTERM, Ctrl-C, q)
STOP_GRACE_S = 5.0

class StreamError(GoatPoseError):
    """A stage failed; the engine stopped every stage. ``stage`` names it."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__("{} stage failed: {}".format(stage, cause))
        self.stage = stage
        self.cause = cause


class StopTimeout(GoatPoseError):
    """A stop whose frames in flight did not come out within the grace: ``stages`` were still at work."""

    def __init__(self, stages: List[str], grace: float):
        super().__init__("the {} stage{} did not stop within {:g} s (stuck in a native call?): stopped without "
                         "{}".format(" and ".join(stages) or "pipeline", "s" if len(stages) > 1 else "", grace,
                                     "them" if len(stages) > 1 else "it"))
        self.stages = stages


@dataclass
class StreamOptions:
    pose: str  # the pose artefact (.onnx, .engine, .pth)
    detector: str = "hog"  # a ``make_detector`` spec
    detect: str = "sync"  # sync | async
    detect_every: int = 1  # sync: run the detector on every Nth frame, carry boxes in between
    detect_workers: int = 1  # detector instances (threads)
    workers: Optional[int] = None  # pose runners (None: the backend's default, ``Runner.default_workers``)
    threads: Optional[int] = None  # CPU threads per pose runner (None: the backend's split of the cores)
    max_batch: Optional[int] = None  # persons per pose call (None: the artefact's largest batch, 8 if dynamic)
    flip: bool = False
    post_process: Optional[str] = "quarter"  # quarter | dark | None
    max_persons: Optional[int] = None  # pose at most the N best boxes per frame
    smooth: bool = False
    smoothing: OneEuroOptions = field(default_factory=OneEuroOptions)
    track_min_score: float = 0.3  # carried tracks (async, detect_every > 1) end with < 4 keypoints at this score
    merge_iou: float = 0.3  # async: a detection overlapping a carried box by this much is the same person
    carry_lag: int = 1  # carried boxes come from the poses of at most this many frames before
    sequential: bool = False
    queue_size: int = 4
    max_frames: Optional[int] = None  # per stream
    csi: CsiOptions = field(default_factory=CsiOptions)

    def check(self, sources: Optional[int] = None) -> "StreamOptions":
        """Every rule the options alone decide (the CLI says them as usage errors, exit 2); with ``sources``, the
        number of sources, also the detector workers they can use."""
        if self.detect not in ("sync", "async"):
            raise GoatPoseError("--detect must be sync or async, got {!r}".format(self.detect))
        for name in ("detect_every", "detect_workers", "workers", "threads", "max_batch", "max_persons",
                     "max_frames", "queue_size", "carry_lag"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GoatPoseError("--{} must be >= 1, got {}".format(name.replace("_", "-"), value))
        if self.detect == "async" and self.detect_every != 1:
            raise GoatPoseError("--detect async runs the detector as often as it can: drop --detect-every")
        if sources is not None and self.detect == "async" and self.detect_workers > sources:
            raise GoatPoseError("--detect-workers {}: asynchronous detection runs one detector per stream at a time, "
                                "so {} source{} can use at most {}".format(self.detect_workers, sources,
                                                                         "s" if sources > 1 else "", sources))
        if self.sequential and self.detect == "async":
            raise GoatPoseError("asynchronous detection needs the pipelined engine, not the sequential loop")
        if self.post_process not in (None, "quarter", "dark"):
            raise GoatPoseError("--post-process must be quarter, dark or none, got {!r}".format(self.post_process))
        try:
            self.smoothing.check()
        except ValueError as exc:
            raise GoatPoseError("--smooth: {}".format(exc)) from exc
        return self


class _Stream:
    """A source: its spec, its capture reader and its figures (``results.StreamStats``)."""

    def __init__(self, index: int, spec, capture, options: "StreamOptions", fps: float, count: int):
        self.index = index
        self.spec = spec
        self.stats = StreamStats(spec.describe() if spec.kind != "csi" else "csi camera",
                                 frame_count=count if count > 0 else None,
                                 fps_nominal=fps if fps and 0 < fps < 1000 else None)
        # a file's reader stops at max_frames itself; a live source is bounded by the feed (admitted frames)
        self.reader = FrameReader(capture, spec.live, options.queue_size,
                                  options.max_frames if not spec.live else None, fps)


class StreamEngine:
    """Pose on ``sources`` (``parse_source`` specs) with ``options``; iterate it for ``FrameResult``s, or
    ``events()`` for those and a ``StreamEnd`` per stream. Use it as a context manager (``close`` on exit)."""

    def __init__(self, sources: Sequence[str], options: StreamOptions):
        import cv2

        if not sources:
            raise SourceError("no video source given")
        self.options = options.check(len(sources))
        self.streams = []  # type: List[_Stream]
        try:
            for index, source in enumerate(sources):
                spec = parse_source(source, options.csi)
                try:
                    capture = open_capture(spec)
                except SourceError as exc:
                    raise SourceError("source {} ({}): {}".format(index, source, exc)) if len(sources) > 1 else exc
                fps = capture.get(cv2.CAP_PROP_FPS)
                count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if spec.kind == "file" else 0
                self.streams.append(_Stream(index, spec, capture, options, fps, count))
        except BaseException:
            for stream in self.streams:
                stream.reader.close()
            raise
        self.stats = EngineStats()
        self.runners = []
        self.detectors = []
        self.estimators = []
        self.threads = []  # type: List[threading.Thread]
        self.window = None  # type: Optional[Window]
        self.channels = {}  # type: Dict[str, object]
        self._busy = OrderedDict((s, 0.0) for s in STAGES)
        self._working = {}  # type: Dict[str, int]  # stage -> workers inside ``work`` now (under _lock)
        self._lock = threading.Lock()
        self._error = None  # type: Optional[BaseException]
        self._aborted = False
        self.stopping = False  # stop() was called (read by the feeds)
        self._stop_deadline = None  # type: Optional[float]
        self._owned = set()  # ids of runners and detectors a started worker thread releases itself
        self._started = None  # type: Optional[float]
        self._finished = False
        self._closed = False

    # ---- set-up and tear-down
    def open(self, log=None) -> "StreamEngine":
        """Load the pose runners and detectors (every failure here is raised before any frame is read); ``log``: told
        what each TensorRT pose worker holds on the GPU as it activates (a TX2 shares its 8 GB with the CPU)."""
        from goatpose_edge.detection import make_detector
        from goatpose_edge.pipeline import TopDownPoseEstimator
        from goatpose_edge.runtime import open_runner

        options = self.options
        try:
            prototype = open_runner(options.pose, options.threads, log=log)
            prototype.pose_contract()
            workers = 1 if options.sequential else (options.workers or prototype.default_workers())
            threads = options.threads or prototype.worker_threads(workers)
            for _ in range(workers):
                runner = prototype.spawn(threads)
                self.runners.append(runner)
                runner.activate()
            for _ in range(1 if options.sequential else options.detect_workers):
                self.detectors.append(make_detector(options.detector))
            for runner in self.runners:
                self.estimators.append(TopDownPoseEstimator(None, runner, flip=options.flip,
                                                            post_process=options.post_process,
                                                            max_batch=options.max_batch, timer=StageTotals()))
        except BaseException:
            self.close()
            raise
        first = self.runners[0]
        self.contract = first.contract
        self.max_batch = min(b for b in (options.max_batch, first.max_batch or DEFAULT_MAX_BATCH) if b)
        self.stats.workers, self.stats.detect_workers = len(self.runners), len(self.detectors)
        self.stats.max_batch = self.max_batch
        return self

    def __enter__(self) -> "StreamEngine":
        return self.open() if not self.runners else self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Abort whatever still runs, join every thread within ``JOIN_GRACE_S``, release sources and whatever no
        worker thread owns (a stuck worker keeps its runner: it may still be inside it)."""
        if self._closed:
            return
        self._closed = True
        clean = self._finished and self._error is None
        self._abort()  # after a clean end too: asynchronous detectors may still hold frames nobody will use
        deadline = time.monotonic() + JOIN_GRACE_S
        for thread in self.threads:
            if thread.ident is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # after a clean end, an asynchronous detector finishing a frame nobody will use is not stuck (it releases
        # its detector itself); anything else still running is
        self.stats.stuck = sorted(set(t.name[len("goatpose-"):] for t in self.threads if t.is_alive() and not (
            clean and self.options.detect == "async" and t.name == "goatpose-detect")))
        for stream in self.streams:
            stream.reader.close(timeout=max(0.0, deadline - time.monotonic()))
            if not stream.stats.ended and "feed" not in self.stats.stuck:  # its feed never left normally
                stream.stats.ended = stream.reader.ended or "aborted"
                stream.stats.dropped = stream.reader.dropped
        for resource in self.detectors + self.runners:
            if id(resource) not in self._owned:
                _release(resource)
        self._collect_stats()

    @property
    def elapsed(self) -> float:
        """Seconds since the engine started reading (0 before)."""
        return time.perf_counter() - self._started if self._started is not None else 0.0

    @property
    def started(self) -> bool:
        """Whether the engine started reading its sources."""
        return self._started is not None

    @property
    def running_threads(self) -> List[str]:
        return [t.name for t in self.threads if t.is_alive()]

    # ---- control
    def stop(self, grace: Optional[float] = None) -> None:
        """Admit no more frames; the frames in flight still come out, then the iteration ends. ``grace``: seconds
        ``next_event`` waits for them before it raises ``StopTimeout`` (None: as long as they take)."""
        self.stopping = True
        if grace is not None and self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + grace
            self._grace = grace
        for stream in self.streams:
            stream.reader.halt()
        if self.window is not None:
            self.window.halt()

    def abort(self) -> None:
        """End now: every thread leaves at its next wait; the frames in flight are lost (a second Ctrl-C)."""
        self._abort()

    def _abort(self) -> None:
        with self._lock:
            self._aborted = True
        for channel in self.channels.values():
            channel.abort()
        if self.window is not None:
            self.window.abort()
        for stream in self.streams:
            stream.reader.halt()

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc if isinstance(exc, StreamError) else StreamError(stage, exc)
        self._abort()

    def add_busy(self, stage: str, seconds: float) -> None:
        """Busy time of a stage run by the caller (the outputs)."""
        with self._lock:
            self._busy[stage] = self._busy.get(stage, 0.0) + seconds

    # ---- the stages, declared once
    def _declare(self, send, close, outstanding) -> List[Stage]:
        """Every stage: its name, its work, its inbox, and the runner or detector each of its threads owns."""
        options, channels = self.options, self.channels
        self.work = work = Stages(self.streams, options, self.contract, send, close, outstanding)
        self.feeds = [_Feed(self, stream) for stream in self.streams]
        crop, post = self._stage_estimators()
        if options.detect == "async":
            detect = Stage("detect", lambda job, detector: work.detect_newest(job, detector, channels[
                "newest"].done), channels.get("newest"), owns=self.detectors)
        else:
            detect = Stage("detect", work.detect, channels.get("detect"), owns=self.detectors)
        return [Stage("feed", feed, stream.reader.channel, leave=feed.leave, timed=False)
                for feed, stream in zip(self.feeds, self.streams)] + [
            detect,
            Stage("crop", work.crop, channels.get("crop"), owns=[crop], finished=work.crop_finished),
            Stage("pose", work.pose, channels.get("pose"), owns=self.estimators, batch=self.max_batch),
            Stage("post", work.post, channels.get("post"), owns=[post], finished=work.post_finished),
        ]

    def _stage_estimators(self):
        """Crop's and post's own estimators over the first runner (they crop and decode, never infer): each thread
        keeps its own stage timer."""
        from goatpose_edge.pipeline import TopDownPoseEstimator

        options = self.options
        return [TopDownPoseEstimator(None, self.runners[0], flip=options.flip, post_process=options.post_process,
                                     max_batch=options.max_batch, timer=StageTotals()) for _ in range(2)]

    # ---- the threaded schedule
    def _start_threads(self) -> None:
        options, count = self.options, len(self.streams)
        self.window = Window(count, options.queue_size + options.detect_workers + len(self.runners))
        redetects = options.detect == "sync" and options.detect_every > 1
        self.channels = {"crop": Channel("crop"), "pose": Channel("pose"), "post": Channel("post"),
                         "out": Channel("out")}
        if options.detect == "async":
            self.channels["newest"] = NewestFrames(count, producers=count)
        else:
            self.channels["detect"] = Channel("detect", producers=count + (1 if redetects else 0))
        channels = self.channels

        def send(stage: str, job) -> None:
            if stage == "newest":
                channels["newest"].offer(*job)
            else:
                channels[stage].put(job)

        stages = self._declare(send, lambda stage: channels[stage].close(),
                               lambda stream, received: channels["newest"].outstanding(stream, received))
        workers = []
        for stage in stages:
            self.stats.threads[stage.name] = self.stats.threads.get(stage.name, 0) + stage.threads
            for worker in range(stage.threads):
                own = stage.owns[worker] if stage.owns else None
                owned = own.runner if stage.name == "pose" else own if stage.name == "detect" else None
                thread = threading.Thread(target=self._worker, args=(stage, own, owned), daemon=True,
                                          name="goatpose-" + stage.name)
                workers.append((thread, owned))
                self.threads.append(thread)
        self.stats.threads["capture"] = count
        self._started = time.perf_counter()
        try:
            for stream in self.streams:
                stream.reader.start()
            for thread, owned in workers:
                thread.start()
                if owned is not None:
                    self._owned.add(id(owned))
        except RuntimeError as exc:  # "can't start new thread": a thread or memory limit
            self._abort()
            raise GoatPoseError("cannot start a thread ({}): {} threads for {} source{}; lower --streams, "
                                "--workers or --detect-workers, or raise the limit (ulimit -u / -v)".format(
                                    exc, len(self.threads) + count, count, "s" if count > 1 else "")) from exc

    def _worker(self, stage: Stage, own, owned) -> None:
        """One thread of ``stage``: ``run_stage`` with its busy time and the count of workers at work (a stop that
        times out names the stages still at work); it releases ``owned`` (its runner or detector) as it leaves."""
        name, busy, lock = stage.name, self._busy, self._lock

        def work(job):
            with lock:
                self._working[name] = self._working.get(name, 0) + 1
            start = time.perf_counter()
            try:
                stage.work(job, own) if stage.owns else stage.work(job)
            finally:
                with lock:
                    self._working[name] -= 1
                    if stage.timed:
                        busy[name] = busy.get(name, 0.0) + time.perf_counter() - start

        run_stage(stage, work, self._fail, lambda: _release(owned) if owned is not None else None)

    # ---- the sequential schedule: the same stages, one job at a time, in the caller's thread
    def _sequential_events(self) -> Iterator[Union[FrameResult, StreamEnd]]:
        queues = {name: deque() for name in ("detect", "crop", "pose", "post", "out")}
        stages = self._declare(lambda stage, job: queues[stage].append(job), lambda stage: None,
                               lambda stream, received: False)
        feeds = [stage for stage in stages if stage.name == "feed"]
        later = [stage for stage in stages if stage.name != "feed"]
        active = list(range(len(feeds)))
        while active:
            for index in list(active):
                frame = self.streams[index].reader.channel.get()
                self._sequential_step(feeds[index], frame)
                if frame is END:
                    active.remove(index)
                while any(queues[stage.name] for stage in later):
                    for stage in later:
                        queue = queues[stage.name]
                        if queue:
                            job = [queue.popleft() for _ in range(min(len(queue), stage.batch))] \
                                if stage.batch > 1 else queue.popleft()
                            self._sequential_step(stage, job)
                while queues["out"]:
                    yield queues["out"].popleft()

    def _sequential_step(self, stage: Stage, job) -> None:
        start = time.perf_counter()
        try:
            if job is END:
                stage.leave()
            else:
                stage.work(job, stage.owns[0]) if stage.owns else stage.work(job)
                if stage.finished():
                    stage.leave()
        except Exception as exc:  # noqa: BLE001 - one error, as in the threaded schedule
            raise StreamError(stage.name, exc) from exc
        if stage.timed:
            self._busy[stage.name] = self._busy.get(stage.name, 0.0) + time.perf_counter() - start

    # ---- iteration
    def start(self) -> "StreamEngine":
        """Open (if not yet) and start reading; ``next_event`` then hands out the results."""
        if not self.runners:
            self.open()
        if self._started is None:
            if self.options.sequential:
                self._started = time.perf_counter()
                for stream in self.streams:
                    stream.reader.start()
                self.stats.threads.update((s, 1) for s in ("detect", "crop", "pose", "post"))
                self._sequence = self._sequential_events()
            else:
                self._start_threads()
        return self

    def next_event(self) -> Optional[Union[FrameResult, StreamEnd]]:
        """The next ``FrameResult`` or ``StreamEnd``; None once every stream has ended. Raises ``StreamError`` when
        a stage failed, ``StopTimeout`` when a stop's grace ran out. A ``KeyboardInterrupt`` while waiting leaves the
        engine intact: call ``stop()`` and go on reading to get the frames in flight, or ``abort()``."""
        if self._started is None:
            self.start()
        if self._finished:
            return None
        try:
            event = self._next()
        except Aborted:
            event = END
        except StreamError as exc:  # the sequential schedule's
            self._error = exc
            event = END
        if event is END:
            self._finish()
            return None
        if isinstance(event, FrameResult):
            stats = self.streams[event.stream].stats
            stats.frames += 1
            stats.persons += len(event.persons)
            stats.seconds = self.elapsed
            if self.window is not None:
                self.window.release(event.stream)
        return event

    def _next(self):
        if self.options.sequential:
            return next(self._sequence, END)
        out = self.channels["out"]
        if self._stop_deadline is None:
            return out.get()
        event = out.get_until(self._stop_deadline)
        if event is None:
            with self._lock:
                busy = [s for s in STAGES if self._working.get(s)]
                if self._error is None:  # a stage's own failure, recorded first, is the one to report
                    self._error = StopTimeout(busy, self._grace)
            self._abort()
            return END
        return event

    def _finish(self) -> None:
        self._finished = True
        self.stats.wall_s = self.elapsed
        if self._error is not None:
            raise self._error

    def events(self) -> Iterator[Union[FrameResult, StreamEnd]]:
        """``FrameResult``s in order within each stream, a ``StreamEnd`` after each stream's last frame."""
        while True:
            event = self.next_event()
            if event is None:
                return
            yield event

    def __iter__(self) -> Iterator[FrameResult]:
        for event in self.events():
            if isinstance(event, FrameResult):
                yield event

    def _collect_stats(self) -> None:
        if self._started is not None and not self.stats.wall_s:
            self.stats.wall_s = self.elapsed
        self._busy["capture"] = sum(s.reader.busy_s for s in self.streams)
        self.stats.threads.setdefault("capture", len(self.streams))
        self.stats.busy_s = OrderedDict((s, round(self._busy.get(s, 0.0), 6)) for s in STAGES
                                        if self._busy.get(s) or s in ("detect", "pose"))
        if getattr(self, "work", None) is not None:
            self.stats.pose_calls = self.work.pose_calls
        model = OrderedDict()
        for estimator in self.estimators:
            for stage, seconds in estimator.timer.totals.items():
                model[stage] = round(model.get(stage, 0.0) + seconds, 6)
        self.stats.model_stages = model


class _Feed:
    """A source's feed: each frame the capture delivers gets a slot in the window (a file waits for one; a stop ends
    the wait), a ``seq`` and goes to the stages; ``leave`` sends the end marker behind the last one."""

    def __init__(self, engine: StreamEngine, stream: _Stream):
        self.engine, self.stream = engine, stream
        self.seq = 0

    def __call__(self, frame) -> None:
        engine, stream = self.engine, self.stream
        if engine.window is not None and not engine.window.acquire(stream.index):
            stream.reader.halt()  # a stop: admit no more
            return
        stream.stats.dropped = stream.reader.dropped  # live figures (the live view, --publish stats)
        engine.work.admit(stream, self.seq, frame)
        self.seq += 1
        limit = engine.options.max_frames
        if limit is not None and self.seq >= limit:
            stream.stats.ended = "stopped"
            stream.reader.halt()

    def leave(self) -> None:
        engine, stream = self.engine, self.stream
        stream.reader.close(timeout=JOIN_GRACE_S)
        stream.stats.ended = stream.stats.ended or ("stopped" if engine.stopping else stream.reader.ended or
                                                    "stopped")
        stream.stats.dropped = stream.reader.dropped
        engine.work.end_of(stream, self.seq)
        if engine.options.sequential:
            return
        engine.channels["newest" if engine.options.detect == "async" else "detect"].close()


def _release(resource) -> None:
    """Close a detector or deactivate a runner; a failure here cannot change the run's outcome."""
    try:
        resource.close() if hasattr(resource, "close") else resource.deactivate()
    except Exception:  # noqa: BLE001 - releasing the rest matters more
        pass
