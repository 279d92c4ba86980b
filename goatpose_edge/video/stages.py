"""The work of each stage of the streaming engine, the same for the threaded and the sequential schedules.

A stage's ``work`` takes one job (a batch for the pose stage) and ``send``s what it makes to the next stage by
name; the schedule decides whether ``send`` is a ``flow.Channel`` (threads) or a local queue (one thread). The
frames of a stream are numbered as they are admitted (``seq``) and the stages that need their order restore it
(crop, post) from what arrives, so any number of detector or pose workers may finish out of order.

    feed (1 per source) -> detect (sync: frames the rule names; async: the newest frame per stream)
        -> crop (in order per stream: the boxes of each frame, then the person crops)
        -> pose (person crops of all frames and streams, batched) -> post (in order per stream: decode, follow,
        track, smooth) -> out (the caller)

Following persons (``--detect-every N`` and ``--detect async``): a frame is posed on the boxes carried from the
frame before (``detection.reuse``), so the crop stage plans frame i of a stream once post has sent the carried boxes
of frame i - 1 (``_Posed``); other streams' frames go on meanwhile. With ``--detect-every N`` the detector runs on
exactly the frames ``detector_due`` names, decided from the index (0, N, 2N, ... in the detect stage) or from the
carried boxes of the frame before (final when crop plans it: the frame goes back to the detect stage). Every state
below has one owner: the feed's fields its feed thread, ``_CropState`` the crop thread, ``_PostState`` the post
thread; an ``_Item`` is handed over through channels, and its pending crop count is decremented under its lock.
"""

import threading
from dataclasses import replace
from typing import Callable, Dict, List, Optional

import numpy as np

from goatpose_edge.detection.base import Detections, iou_matrix
from goatpose_edge.detection.reuse import detector_due, follow, track_alive
from goatpose_edge.pipeline import usable_boxes
from goatpose_edge.video.results import FrameResult, StreamEnd
from goatpose_edge.video.smoothing import KeypointSmoother
from goatpose_edge.video.tracking import IoUTracker


class _Item:
    """A frame on its way through the stages."""

    __slots__ = ("stream", "seq", "frame", "detections", "detected", "carried", "crops", "heatmaps", "pending", "lock")

    def __init__(self, stream: int, seq: int, frame):
        self.stream, self.seq, self.frame = stream, seq, frame
        self.detections = None  # type: Optional[Detections]  # the detector's boxes, when it ran on this frame
        self.detected = False  # the detector ran on this frame (rule or redetection)
        self.carried = np.zeros((0,), bool)  # per crop: posed on a carried box
        self.crops = None
        self.heatmaps = None  # type: Optional[np.ndarray]
        self.pending = 0
        self.lock = threading.Lock()


class _EndOf:
    """A stream's end marker: ``seq`` = the frames it admitted; it travels behind them through every stage."""

    __slots__ = ("stream", "seq")

    def __init__(self, stream: int, seq: int):
        self.stream, self.seq = stream, seq


class _Posed:
    """Post -> crop: the boxes followed into frame ``seq + 1`` of ``stream``."""

    __slots__ = ("stream", "seq", "carry")

    def __init__(self, stream: int, seq: int, carry: Detections):
        self.stream, self.seq, self.carry = stream, seq, carry


class _Fresh:
    """Asynchronous detector -> crop: what it found on the newest frame of ``stream``."""

    __slots__ = ("stream", "detections")

    def __init__(self, stream: int, detections: Detections):
        self.stream, self.detections = stream, detections


def merge_boxes(carried: Detections, fresh: Optional[Detections], iou: float):
    """(carried boxes plus the fresh detections that overlap none of them by ``iou`` or more (new persons), [M] bool:
    carried)."""
    if fresh is None or len(fresh) == 0:
        return carried, np.ones(len(carried), bool)
    if len(carried) == 0:
        return fresh, np.zeros(len(fresh), bool)
    new = iou_matrix(fresh.boxes, carried.boxes).max(axis=1) < iou
    merged = Detections(np.concatenate([carried.boxes, fresh.boxes[new]]),
                        np.concatenate([carried.scores, fresh.scores[new]]))
    return merged, np.concatenate([np.ones(len(carried), bool), np.zeros(int(new.sum()), bool)])


class _CropState:
    """The crop thread's view of a stream."""

    def __init__(self):
        self.waiting = {}  # type: Dict[int, object]  # seq -> _Item or _EndOf, arrived out of order
        self.next = 0  # the next seq to plan
        self.carry = Detections.empty()  # the boxes followed into frame carry_seq + 1
        self.carry_seq = -1  # nobody is followed into frame 0
        self.fresh = None  # type: Optional[Detections]  # async: the newest detections not yet merged
        self.done = False


class _PostState:
    """The post thread's view of a stream."""

    def __init__(self, smoother: Optional[KeypointSmoother]):
        self.waiting = {}  # type: Dict[int, object]
        self.next = 0
        self.tracker = IoUTracker()
        self.smoother = smoother
        self.done = False


class Stages:
    """The stage functions over ``streams`` (objects with ``index``, ``spec`` (``live``), ``reader`` and ``stats``)
    with ``options`` (``StreamOptions``); ``send(stage, job)`` hands work on ("detect", "crop", "pose", "post",
    "out"); ``close(stage)`` tells a channel that a producer is done; ``outstanding(stream, received)`` says whether
    an asynchronous detection of that stream is waiting or under way beyond the ``received`` ones."""

    def __init__(self, streams, options, contract, send: Callable[[str, object], None],
                 close: Callable[[str], None], outstanding: Callable[[int, int], bool] = lambda stream, received: False):
        self.streams, self.options, self.contract = streams, options, contract
        self.send, self.close, self.outstanding = send, close, outstanding
        self.follows = options.detect == "async" or options.detect_every > 1
        self.redetects = options.detect == "sync" and options.detect_every > 1  # crop sends frames back to detect
        self.crop_state = [_CropState() for _ in streams]
        self.post_state = [_PostState(KeypointSmoother(options.smoothing) if options.smooth else None)
                           for _ in streams]
        self.pose_calls = 0  # the pose workers' calls (under ``lock``)
        self.lock = threading.Lock()

    # ---- feed: one thread per source (the frame's seq, the admission, the end marker)
    def admit(self, stream, seq: int, frame) -> None:
        item = _Item(stream.index, seq, frame)
        stream.stats.frames_in = seq + 1
        if self.options.detect == "async":
            self.send("newest", (stream.index, frame))
            self.send("crop", item)
        else:
            self.send("detect", item)

    def end_of(self, stream, seq: int) -> None:
        self.send("crop" if self.options.detect == "async" else "detect", _EndOf(stream.index, seq))

    # ---- detect (sync): the frames whose index the rule names, and those crop sends back (nobody followed)
    def detect(self, job, detector) -> None:
        if isinstance(job, _Item) and (job.seq % self.options.detect_every == 0 or job.detected):
            image = job.frame.image
            job.detections = detector.detect(image) if image.size else Detections.empty()
            job.detected = True
        self.send("crop", job)

    # ---- detect (async): the newest frame of a stream; the result goes to crop, which merges it
    def detect_newest(self, job, detector, done: Callable[[int], None]) -> None:
        stream, frame = job
        try:
            found = detector.detect(frame.image) if frame.image.size else Detections.empty()
            self.send("crop", _Fresh(stream, found))  # before the stream's next frame can go to a detector:
        finally:                                        # its results reach crop in the order they were taken
            done(stream)

    # ---- crop: in order per stream, the boxes of each frame, then its person crops to the pose workers
    def crop(self, job, estimator) -> None:
        state = self.crop_state[job.stream]
        if isinstance(job, _Posed):
            state.carry, state.carry_seq = job.carry, job.seq
        elif isinstance(job, _Fresh):
            state.fresh = job.detections
            self.streams[job.stream].stats.detector_runs += 1
        else:
            state.waiting[job.seq] = job
        self._plan(self.streams[job.stream], state, estimator)

    def crop_finished(self) -> bool:
        return all(state.done for state in self.crop_state)

    def _plan(self, stream, state: _CropState, estimator) -> None:
        while state.next in state.waiting:
            job = state.waiting[state.next]
            if isinstance(job, _EndOf):
                del state.waiting[state.next]
                state.done = True
                self.send("post", job)
                if self.crop_finished():  # every stream's frames are with the pose workers or past them
                    self.close("pose")
                    if self.redetects:
                        self.close("detect")
                return
            boxes = self._boxes(stream, state, job)
            if boxes is None:  # waits for the poses of the frame before, or for the detector
                return
            del state.waiting[state.next]
            state.next += 1
            if job.detected:
                stream.stats.detector_runs += 1
            self._crop_item(job, boxes[0], boxes[1], estimator)

    def _boxes(self, stream, state: _CropState, item: _Item):
        """(boxes, carried mask) to pose ``item`` on, or None when it must wait."""
        options = self.options
        if item.detected and (not self.follows or item.seq % options.detect_every == 0):
            return item.detections, np.zeros(len(item.detections), bool)
        if state.carry_seq < item.seq - 1:  # the frame before is not posed yet
            return None
        if options.detect == "sync":
            if item.detected:  # sent back: nobody was followed into it
                return item.detections, np.zeros(len(item.detections), bool)
            if detector_due(item.seq, options.detect_every, state.carry):
                del state.waiting[item.seq]
                item.detected = True
                self.send("detect", item)
                return None
            return state.carry, np.ones(len(state.carry), bool)
        fresh = state.fresh
        if (len(state.carry) == 0 and fresh is None and not stream.spec.live
                and self.outstanding(stream.index, stream.stats.detector_runs)):
            return None  # a file with nobody to follow waits for the detection under way (a live source never waits)
        state.fresh = None
        return merge_boxes(state.carry, fresh, options.merge_iou)

    def _crop_item(self, item: _Item, detections: Detections, carried: np.ndarray, estimator) -> None:
        limit = self.options.max_persons
        if limit is not None and len(detections) > limit:
            order = np.argsort(-detections.scores, kind="stable")[:limit]
            detections, carried = Detections(detections.boxes[order], detections.scores[order]), carried[order]
        image = item.frame.image
        if not image.size:
            detections, carried = Detections.empty(), carried[:0]
        usable = usable_boxes(detections, image.shape)
        item.carried = carried[usable]
        item.crops = estimator.preprocess(image, Detections(detections.boxes[usable], detections.scores[usable]))
        count = len(item.crops)
        if count == 0:
            self.send("post", item)
            return
        item.heatmaps = np.zeros((count, self.contract.num_keypoints) + tuple(self.contract.heatmap_size),
                                 np.float32)
        item.pending = count
        for index in range(count):
            self.send("pose", (item, index))

    # ---- pose: a batch of person crops, from any frames and streams
    def pose(self, jobs: List[tuple], estimator) -> None:
        batch = np.stack([item.crops.batch[index] for item, index in jobs])
        heatmaps = estimator.heatmaps(batch)
        with self.lock:
            self.pose_calls += 1
        for (item, index), heatmap in zip(jobs, heatmaps):
            item.heatmaps[index] = heatmap
            with item.lock:
                item.pending -= 1
                done = item.pending == 0
            if done:
                self.send("post", item)

    # ---- post: in order per stream, decode, follow, track, smooth, hand out
    def post(self, job, estimator) -> None:
        state = self.post_state[job.stream]
        state.waiting[job.seq] = job
        while state.next in state.waiting:
            job = state.waiting.pop(state.next)
            if isinstance(job, _EndOf):
                state.done = True
                self.send("out", StreamEnd(job.stream, self.streams[job.stream].stats))
                if self.post_finished():
                    self.close("out")
                return
            self.send("out", self._post_item(job, state, estimator))
            state.next += 1

    def post_finished(self) -> bool:
        return all(state.done for state in self.post_state)

    def _post_item(self, item: _Item, state: _PostState, estimator) -> FrameResult:
        persons, kept = estimator.postprocess_kept(item.crops, item.heatmaps)
        if self.follows:  # carried persons whose poses faded end; the rest are followed into the next frame
            stats = self.streams[item.stream].stats
            stats.followed += len(persons)
            stats.followed_ended += sum(1 for p in persons if not track_alive(p.keypoints,
                                                                              self.options.track_min_score))
            persons, carry = follow(persons, item.carried[kept], self.options.track_min_score)
            self.send("crop", _Posed(item.stream, item.seq, carry))
        ids = state.tracker.update([p.box for p in persons], [p.keypoints for p in persons])
        raw = None
        if state.smoother is not None:
            raw = [p.keypoints for p in persons]
            smoothed = state.smoother.update(ids, raw, item.frame.timestamp)
            persons = [replace(p, keypoints=k) for p, k in zip(persons, smoothed)]
        frame = item.frame
        return FrameResult(item.stream, frame.index, frame.timestamp, frame.image, persons, ids, raw, frame.captured)
