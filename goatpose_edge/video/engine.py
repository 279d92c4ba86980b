"""The streaming engine: pose on one or many video sources, every stage in its own thread with bounded queues.

    with StreamEngine(["cam.mp4", "0"], StreamOptions(pose="export/goatpose-bl_256x192.onnx")) as engine:
        for result in engine:                   # FrameResult per frame, in order within each stream
            print(result.stream, result.index, len(result.persons), result.ids)

Stages (threads)::

    capture (1 per source) -> feed (1 per source) -> detect (``detect_workers``) -> crop + normalise (1)
        -> pose (``workers`` runners, person crops batched across frames and streams) -> decode + track + smooth (1)
        -> the caller's loop (sinks: overlay video, JSONL, window)

Files never drop a frame (each stage waits for room: back-pressure); live sources keep the newest frame and count
what they drop (``FrameReader``). ``detect="async"``: the detector runs beside the pipeline on the newest frame it
can get, and every frame is posed on the boxes of its track's last poses (``keypoint_box``) merged with the latest
detections (new persons enter there); a carried track ends when fewer than ``TRACK_MIN_JOINTS`` of its keypoints
score ``track_min_score`` (``track_alive``). ``detect_every`` N > 1 (sync): the detector runs on every Nth frame, the
others use the carried boxes. Carried boxes come from the previous frame's poses (``carry_lag``).
``sequential=True`` runs the same stages one after another in the caller's thread (the pre-engine loop, kept for
comparison in ``goatpose bench``).

Exit paths: ``stop()`` (Ctrl-C, ``q``, SIGTERM, --max-frames) stops admitting frames and lets the frames in flight
come out, so every admitted frame is delivered; an exception in any stage aborts every stage and is raised by the
iterator as ``StreamError``; ``close()`` joins every thread (none is left running) and releases sources, runners
and detectors. A source that cannot be opened fails the constructor (the others are released); a stream lost
mid-run ends with a ``StreamEnd`` whose stats say "lost", while the others go on.
"""

import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from goatpose_edge.detection.base import Detections
from goatpose_edge.detection.reuse import carried_boxes, track_alive
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime.base import DEFAULT_MAX_BATCH
from goatpose_edge.timing import StageTotals
from goatpose_edge.video.capture import Frame, FrameReader
from goatpose_edge.video.smoothing import KeypointSmoother, OneEuroOptions
from goatpose_edge.video.sources import CsiOptions, SourceError, open_capture, parse_source
from goatpose_edge.video.tracking import IoUTracker, iou_matrix

#: stages in pipeline order, as reported in the stats
STAGES = ("capture", "detect", "crop", "pose", "post", "sink")

_END = object()


class StreamError(GoatPoseError):
    """A stage failed; the engine stopped every stage. ``stage`` names it."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__("{} stage failed: {}".format(stage, cause))
        self.stage = stage
        self.cause = cause


class _Aborted(Exception):
    """Raised inside a stage thread when the engine aborts."""


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

    def check(self) -> "StreamOptions":
        if self.detect not in ("sync", "async"):
            raise GoatPoseError("--detect must be sync or async, got {!r}".format(self.detect))
        for name in ("detect_every", "detect_workers", "workers", "threads", "max_batch", "max_persons",
                     "max_frames", "queue_size", "carry_lag"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GoatPoseError("--{} must be >= 1, got {}".format(name.replace("_", "-"), value))
        if self.detect == "async" and self.detect_every != 1:
            raise GoatPoseError("--detect async runs the detector as often as it can: drop --detect-every")
        if self.sequential and self.detect == "async":
            raise GoatPoseError("asynchronous detection needs the pipelined engine, not the sequential loop")
        if self.post_process not in (None, "quarter", "dark"):
            raise GoatPoseError("--post-process must be quarter, dark or none, got {!r}".format(self.post_process))
        try:
            self.smoothing.check()
        except ValueError as exc:
            raise GoatPoseError("--smooth: {}".format(exc)) from exc
        return self


@dataclass
class FrameResult:
    """One frame's poses. ``persons[i].keypoints`` are smoothed when smoothing is on; ``raw_keypoints[i]`` are the
    decoder's (None when not smoothing)."""

    stream: int
    index: int  # position in the source (frames a live source dropped included)
    timestamp: float  # seconds (see ``Frame``)
    image: np.ndarray  # BGR [H, W, 3] uint8
    persons: list  # [pipeline.Person]
    ids: List[int]  # track id per person
    raw_keypoints: Optional[List[np.ndarray]] = None  # [K, 3] per person, before smoothing


@dataclass
class StreamStats:
    source: str
    frames_in: int = 0  # admitted into the pipeline
    frames: int = 0  # delivered
    persons: int = 0
    dropped: int = 0  # a live source's frames replaced by newer ones before the pipeline took them
    detector_runs: int = 0
    ended: str = ""  # end | stopped | lost | error: ... | aborted
    frame_count: Optional[int] = None  # what the container reports
    fps_nominal: Optional[float] = None
    seconds: float = 0.0  # from the engine's start to this stream's last frame


@dataclass
class StreamEnd:
    """The last event of a stream: its outputs can be finalised."""

    stream: int
    stats: StreamStats


@dataclass
class EngineStats:
    wall_s: float = 0.0
    workers: int = 0
    detect_workers: int = 0
    max_batch: int = 0
    pose_calls: int = 0
    busy_s: Dict[str, float] = field(default_factory=OrderedDict)  # per stage, summed over its threads
    threads: Dict[str, int] = field(default_factory=OrderedDict)  # threads per stage
    model_stages: Dict[str, float] = field(default_factory=OrderedDict)  # infer / copy_in / copy_out seconds

    def to_dict(self) -> dict:
        """JSON-ready figures (goatpose video's --summary-json, goatpose bench --video)."""
        return {"workers": self.workers, "detect_workers": self.detect_workers, "max_batch": self.max_batch,
                "pose_calls": self.pose_calls, "wall_s": round(self.wall_s, 4), "busy_s": dict(self.busy_s),
                "threads": dict(self.threads), "utilisation": dict(self.utilisation()),
                "model_s": dict(self.model_stages)}

    def utilisation(self) -> Dict[str, float]:
        """Busy time / (wall time x threads) per stage; stages overlap, so these do not add up to 1."""
        return OrderedDict((s, round(b / (self.wall_s * max(1, self.threads.get(s, 1))), 4) if self.wall_s else 0.0)
                           for s, b in self.busy_s.items())


class _Item:
    """A frame on its way through the stages."""

    __slots__ = ("stream", "seq", "frame", "detections", "carried", "crops", "heatmaps", "pending", "lock")

    def __init__(self, stream: int, seq: int, frame: Frame):
        self.stream, self.seq, self.frame = stream, seq, frame
        self.detections = None  # type: Optional[Detections]  # None: pose on the carried boxes
        self.carried = np.zeros((0, 4), np.float32)  # the carried boxes this frame was posed on
        self.crops = None
        self.heatmaps = None  # type: Optional[np.ndarray]
        self.pending = 0
        self.lock = threading.Lock()


class _Stream:
    """Per-source state shared by the stages (each field has one writer, noted)."""

    def __init__(self, index: int, spec, capture, options: StreamOptions, fps: float, count: int):
        self.index = index
        self.spec = spec
        self.capture = capture
        self.stats = StreamStats(spec.describe() if spec.kind != "csi" else "csi camera",
                                 frame_count=count if count > 0 else None,
                                 fps_nominal=fps if fps and 0 < fps < 1000 else None)
        # a file's reader stops at max_frames itself; a live source is bounded by the feeder (processed frames)
        self.reader = FrameReader(capture, spec.live, options.queue_size,
                                  options.max_frames if not spec.live else None, fps)
        self.tracker = IoUTracker()  # post
        self.smoother = KeypointSmoother(options.smoothing) if options.smooth else None  # post
        self.carry = Detections.empty()  # post writes, crop reads (one reference swap)
        self.fresh = None  # type: Optional[Detections]  # async detector writes, crop takes
        self.latest = None  # type: Optional[Frame]  # feeder writes, async detector takes
        self.detecting = False  # async detector: working on this stream's frame
        self.final = None  # type: Optional[int]  # feeder: frames admitted, once it has stopped
        self.emitted = 0  # post
        self.waiting = {}  # type: Dict[int, _Item]  # post: finished out of order
        self.end_sent = False  # post


def merge_boxes(carried: Detections, fresh: Optional[Detections], iou: float) -> Detections:
    """Carried boxes plus the fresh detections that overlap none of them by ``iou`` or more (new persons)."""
    if fresh is None or len(fresh) == 0:
        return carried
    if len(carried) == 0:
        return fresh
    overlap = iou_matrix(fresh.boxes, carried.boxes).max(axis=1)
    new = overlap < iou
    return Detections(np.concatenate([carried.boxes, fresh.boxes[new]]),
                      np.concatenate([carried.scores, fresh.scores[new]]))


class StreamEngine:
    """Pose on ``sources`` (``parse_source`` specs) with ``options``; iterate it for ``FrameResult``s, or
    ``events()`` for those and a ``StreamEnd`` per stream. Use it as a context manager (``close`` on exit)."""

    def __init__(self, sources: Sequence[str], options: StreamOptions):
        import cv2

        if not sources:
            raise SourceError("no video source given")
        self.options = options.check()
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
        self._abort = threading.Event()
        self._stopping = threading.Event()
        self._error = None  # type: Optional[StreamError]
        self._lock = threading.Lock()
        self._alive = {}  # type: Dict[str, int]  # threads per stage not yet done (feed, detect)
        self._busy = {s: 0.0 for s in STAGES}
        self._started = None  # type: Optional[float]
        self._finished = False
        self._closed = False

    # ---- set-up and tear-down
    def open(self) -> "StreamEngine":
        """Load the pose runners and detectors (every failure here is raised before any frame is read)."""
        from goatpose_edge.detection import make_detector
        from goatpose_edge.pipeline import TopDownPoseEstimator
        from goatpose_edge.runtime import open_runner

        options = self.options
        try:
            prototype = open_runner(options.pose, options.threads)
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
        """Abort whatever still runs, join every thread, release sources, runners and detectors."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()
        for stream in self.streams:
            stream.reader.close()
        for thread in self.threads:
            thread.join(timeout=10)
        for stream in self.streams:
            if not stream.stats.ended:
                stream.stats.ended = stream.reader.ended or "aborted"
            stream.stats.dropped = stream.reader.dropped
        for item in self.detectors + self.runners:
            try:
                item.close() if hasattr(item, "close") else item.deactivate()
            except Exception:  # noqa: BLE001 - release the rest
                pass
        self._collect_stats()

    @property
    def elapsed(self) -> float:
        """Seconds since the engine started reading (0 before)."""
        return time.perf_counter() - self._started if self._started is not None else 0.0

    @property
    def running_threads(self) -> List[str]:
        return [t.name for t in self.threads if t.is_alive()]

    # ---- control
    def stop(self) -> None:
        """Admit no more frames; the frames in flight still come out, then the iteration ends."""
        self._stopping.set()

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = exc if isinstance(exc, StreamError) else StreamError(stage, exc)
        self._abort.set()

    def _put(self, q: "queue.Queue", item) -> None:
        while True:
            if self._abort.is_set():
                raise _Aborted()
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _get(self, q: "queue.Queue"):
        while True:
            if self._abort.is_set():
                raise _Aborted()
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def _thread(self, stage: str, target, *args) -> None:
        def run():
            try:
                target(*args)
            except _Aborted:
                pass
            except BaseException as exc:  # noqa: BLE001 - every stage failure ends the run as one error
                self._fail(stage, exc)

        with self._lock:
            self._alive[stage] = self._alive.get(stage, 0) + 1
        self.stats.threads[stage] = self.stats.threads.get(stage, 0) + 1
        thread = threading.Thread(target=run, name="goatpose-" + stage, daemon=True)
        self.threads.append(thread)

    def _leave(self, stage: str) -> int:
        """A thread of ``stage`` is done; how many are left (the last one passes the end marker on)."""
        with self._lock:
            self._alive[stage] -= 1
            return self._alive[stage]

    def _timed(self, stage: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        with self._lock:
            self._busy[stage] += elapsed

    def add_busy(self, stage: str, seconds: float) -> None:
        """Busy time of a stage run by the caller (the sinks)."""
        with self._lock:
            self._busy[stage] += seconds

    # ---- stage work, shared by the threaded and the sequential schedules
    def _detect(self, item: _Item, detector) -> None:
        stream = self.streams[item.stream]
        every = self.options.detect_every
        if every > 1 and item.seq % every and len(stream.carry):
            item.detections = None  # pose on the boxes carried from the last poses
            return
        start = time.perf_counter()
        item.detections = detector.detect(item.frame.image) if item.frame.image.size else Detections.empty()
        self._timed("detect", start)
        stream.stats.detector_runs += 1

    def _crop(self, item: _Item, estimator) -> None:
        stream = self.streams[item.stream]
        if item.detections is not None:
            start = time.perf_counter()
            detections = item.detections
        else:
            self._await_poses(stream, item.seq)
            if self.options.detect == "async" and not stream.spec.live:
                self._await_detector(stream)
            start = time.perf_counter()  # waiting is not work
            fresh, stream.fresh = stream.fresh, None
            carry = stream.carry
            item.carried = carry.boxes
            detections = merge_boxes(carry, fresh, self.options.merge_iou)
        limit = self.options.max_persons
        if limit is not None and len(detections) > limit:
            order = np.argsort(-detections.scores, kind="stable")[:limit]
            detections = Detections(detections.boxes[order], detections.scores[order])
        image = item.frame.image
        item.crops = estimator.preprocess(image, detections if image.size else Detections.empty())
        item.heatmaps = np.zeros((len(item.crops),) + (self.contract.num_keypoints,) + tuple(
            self.contract.heatmap_size), np.float32) if len(item.crops) else None
        item.pending = len(item.crops)
        self._timed("crop", start)

    def _await_poses(self, stream: _Stream, seq: int) -> None:
        """Carried boxes come from the poses of at most ``carry_lag`` frames before: wait for them (the stages
        behind the crop are then at most that far behind, for this stream; other streams fill the gap)."""
        while stream.emitted < seq - self.options.carry_lag + 1 and not self._abort.is_set():
            time.sleep(0.0005)

    def _await_detector(self, stream: _Stream) -> None:
        """A file with nobody to follow waits for the detector's next result rather than posing empty frames (a
        live source never waits: its frames go on without persons until the detector finds some)."""
        while (len(stream.carry) == 0 and stream.fresh is None and (stream.latest is not None or stream.detecting)
               and not self._abort.is_set()):
            time.sleep(0.001)

    def _post(self, item: _Item, estimator) -> FrameResult:
        stream = self.streams[item.stream]
        start = time.perf_counter()
        persons = estimator.postprocess(item.crops, item.heatmaps) if item.pending == 0 and len(item.crops) else []
        carrying = self.options.detect == "async" or self.options.detect_every > 1
        if len(item.carried) and persons:  # a carried track ends when its poses fade (the person left, is hidden)
            persons = [p for p in persons if track_alive(p.keypoints, self.options.track_min_score)
                       or not (item.carried == np.asarray(p.box, np.float32)).all(axis=1).any()]
        ids = stream.tracker.update([p.box for p in persons], [p.keypoints for p in persons])
        if carrying:  # the next frames' boxes follow the decoder's keypoints (the smoothed ones lag)
            stream.carry = carried_boxes(persons, self.options.track_min_score)
        raw = None
        if stream.smoother is not None:
            raw = [p.keypoints for p in persons]
            smoothed = stream.smoother.update(ids, raw, item.frame.timestamp)
            persons = [replace(p, keypoints=k) for p, k in zip(persons, smoothed)]
        stream.stats.frames += 1
        stream.stats.persons += len(persons)
        stream.stats.seconds = time.perf_counter() - (self._started or start)
        self._timed("post", start)
        frame = item.frame
        return FrameResult(item.stream, frame.index, frame.timestamp, frame.image, persons, ids, raw)

    # ---- the threaded schedule
    def _start_threads(self) -> None:
        options = self.options
        self.detect_q = queue.Queue(maxsize=options.queue_size)
        self.crop_q = queue.Queue(maxsize=options.queue_size)
        self.pose_q = queue.Queue(maxsize=2 * self.max_batch * len(self.runners))
        self.post_q = queue.Queue()
        self.out_q = queue.Queue(maxsize=options.queue_size * len(self.streams))
        for stream in self.streams:
            self._thread("feed", self._feed, stream)
        if options.detect == "async":
            for detector in self.detectors:
                self._thread("detect", self._detect_async, detector)
        else:
            for detector in self.detectors:
                self._thread("detect", self._detect_loop, detector)
        self._thread("crop", self._crop_loop, self.estimators[0])
        for estimator in self.estimators:
            self._thread("pose", self._pose_loop, estimator)
        self._thread("post", self._post_loop, self.estimators[0])
        self._started = time.perf_counter()
        for stream in self.streams:
            stream.reader.start()
        for thread in self.threads:
            thread.start()

    def _halted(self) -> bool:
        return self._stopping.is_set() or self._abort.is_set()

    def _end_reason(self, stream: _Stream) -> str:
        if self._abort.is_set():
            return "aborted"
        if self._stopping.is_set():
            return "stopped"
        return stream.reader.ended or "end"

    def _feed(self, stream: _Stream) -> None:
        seq = 0
        limit = self.options.max_frames
        async_mode = self.options.detect == "async"
        try:
            for frame in stream.reader.frames(self._halted):
                if self._halted():
                    break
                item = _Item(stream.index, seq, frame)
                seq += 1
                stream.stats.frames_in = seq
                if async_mode:
                    stream.latest = frame  # the detector takes the newest one
                    self._put(self.crop_q, item)
                else:
                    self._put(self.detect_q, item)
                if limit is not None and seq >= limit:
                    stream.stats.ended = "stopped"
                    break
        finally:
            stream.stats.ended = stream.stats.ended or self._end_reason(stream)
            stream.reader.close()
            stream.stats.dropped = stream.reader.dropped
            stream.final = seq
            if self._leave("feed") == 0:
                target = self.crop_q if async_mode else self.detect_q
                for _ in range(1 if async_mode else len(self.detectors)):
                    self._put(target, _END)

    def _detect_loop(self, detector) -> None:
        while True:
            item = self._get(self.detect_q)
            if item is _END:
                if self._leave("detect") == 0:
                    self._put(self.crop_q, _END)
                return
            self._detect(item, detector)
            self._put(self.crop_q, item)

    def _detect_async(self, detector) -> None:
        turn = 0
        while not self._abort.is_set():
            stream = None
            for offset in range(len(self.streams)):
                candidate = self.streams[(turn + offset) % len(self.streams)]
                if candidate.latest is not None:
                    stream = candidate
                    break
            if stream is None:
                if all(s.final is not None for s in self.streams):
                    return
                time.sleep(0.002)
                continue
            turn = stream.index + 1
            stream.detecting = True
            try:
                frame, stream.latest = stream.latest, None
                start = time.perf_counter()
                found = detector.detect(frame.image) if frame.image.size else Detections.empty()
                self._timed("detect", start)
                stream.stats.detector_runs += 1
                stream.fresh = found
            finally:
                stream.detecting = False

    def _crop_loop(self, estimator) -> None:
        while True:
            item = self._get(self.crop_q)
            if item is _END:
                for _ in self.runners:
                    self._put(self.pose_q, _END)
                return
            self._crop(item, estimator)
            if item.pending == 0:
                self.post_q.put(item)
                continue
            for index in range(item.pending):
                self._put(self.pose_q, (item, index))

    def _pose_loop(self, estimator) -> None:
        limit = self.max_batch
        while True:
            first = self._get(self.pose_q)
            if first is _END:
                return
            jobs = [first]
            ended = False
            while len(jobs) < limit:  # whatever is already queued, across frames and streams
                try:
                    job = self.pose_q.get_nowait()
                except queue.Empty:
                    break
                if job is _END:
                    ended = True
                    break
                jobs.append(job)
            start = time.perf_counter()
            batch = np.stack([item.crops.batch[index] for item, index in jobs])
            heatmaps = estimator.heatmaps(batch)
            self._timed("pose", start)
            with self._lock:
                self.stats.pose_calls += 1
            for (item, index), heatmap in zip(jobs, heatmaps):
                item.heatmaps[index] = heatmap
                with item.lock:
                    item.pending -= 1
                    done = item.pending == 0
                if done:
                    self.post_q.put(item)
            if ended:
                return

    def _post_loop(self, estimator) -> None:
        while True:
            try:
                item = self.post_q.get(timeout=0.02)
            except queue.Empty:
                item = None
            if self._abort.is_set():
                raise _Aborted()
            if item is not None:
                stream = self.streams[item.stream]
                stream.waiting[item.seq] = item
                while stream.emitted in stream.waiting:
                    ready = stream.waiting.pop(stream.emitted)
                    self._put(self.out_q, self._post(ready, estimator))
                    stream.emitted += 1
            for stream in self.streams:
                if not stream.end_sent and stream.final is not None and stream.emitted >= stream.final:
                    stream.end_sent = True
                    stream.stats.seconds = time.perf_counter() - self._started
                    self._put(self.out_q, StreamEnd(stream.index, stream.stats))
            if all(s.end_sent for s in self.streams):
                self._put(self.out_q, _END)
                return

    # ---- the sequential schedule (every stage in the caller's thread, one frame at a time)
    def _sequential_events(self) -> Iterator[Union[FrameResult, StreamEnd]]:
        frames = [stream.reader.frames(self._halted) for stream in self.streams]
        seqs = [0] * len(self.streams)
        active = list(range(len(self.streams)))
        detector, estimator = self.detectors[0], self.estimators[0]
        limit = self.options.max_frames
        while active:
            for index in list(active):
                stream = self.streams[index]
                frame = None
                if limit is not None and seqs[index] >= limit:
                    stream.stats.ended = "stopped"
                elif not self._halted():
                    frame = next(frames[index], None)
                if frame is None:
                    stream.stats.ended = stream.stats.ended or self._end_reason(stream)
                    stream.reader.close()
                    stream.stats.dropped = stream.reader.dropped
                    stream.final = seqs[index]
                    stream.stats.seconds = time.perf_counter() - self._started
                    stream.end_sent = True
                    active.remove(index)
                    yield StreamEnd(index, stream.stats)
                    continue
                item = _Item(index, seqs[index], frame)
                seqs[index] += 1
                self._detect(item, detector)
                self._crop(item, estimator)
                if item.pending:
                    start = time.perf_counter()
                    item.heatmaps[:] = estimator.heatmaps(item.crops.batch)
                    self._timed("pose", start)
                    self.stats.pose_calls += 1
                    item.pending = 0
                result = self._post(item, estimator)
                stream.stats.frames_in = seqs[index]  # admitted = delivered: an interrupt loses no counted frame
                yield result

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
                self._sequence = self._sequential_events()
            else:
                self._start_threads()
        return self

    def next_event(self) -> Optional[Union[FrameResult, StreamEnd]]:
        """The next ``FrameResult`` or ``StreamEnd``; None once every stream has ended. Raises ``StreamError`` when
        a stage failed. A ``KeyboardInterrupt`` while waiting leaves the engine intact: call ``stop()`` and go on
        reading to get the frames in flight (the threaded schedule; the sequential one ends there)."""
        if self._started is None:
            self.start()
        if self._finished:
            return None
        if self.options.sequential:
            try:
                event = next(self._sequence, None)
            except BaseException:
                self._finished = True
                raise
            if event is None:
                self._finish()
            return event
        while True:
            try:
                event = self.out_q.get(timeout=0.05)
            except queue.Empty:
                if self._abort.is_set():
                    event = _END
                else:
                    continue
            if event is _END:
                self._finish()
                return None
            return event

    def _finish(self) -> None:
        self._finished = True
        self.stats.wall_s = time.perf_counter() - self._started
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
            self.stats.wall_s = time.perf_counter() - self._started
        self._busy["capture"] = sum(s.reader.busy_s for s in self.streams)
        self.stats.threads.setdefault("capture", len(self.streams))
        self.stats.busy_s = OrderedDict((s, round(self._busy[s], 6)) for s in STAGES if self._busy[s] or s in (
            "detect", "pose"))
        model = OrderedDict()
        for estimator in self.estimators:
            for stage, seconds in estimator.timer.totals.items():
                model[stage] = round(model.get(stage, 0.0) + seconds, 6)
        self.stats.model_stages = model
