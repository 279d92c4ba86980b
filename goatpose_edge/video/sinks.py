"""Outputs as sinks: each runs in its own thread behind a bounded queue, so no output slows the pipeline or another.

A sink is small (after roboflow/inference's sinks and GStreamer's leaky queues)::

    class MySink(Sink):
        name = "my output"           # for messages
        wants = "record"             # "record": the frame's record (``FrameResult.record()``); "overlay": also the
                                     # overlay image, drawn once per frame on a copy for every sink that wants it
        policy = "latest"            # when it falls behind: "wait" (files: the pipeline waits, nothing is dropped)
                                     # or "latest" (live outputs: the newest frame is kept, the others are counted)

        def open(self, run):         # before the first frame, in the caller's thread: ``RunInfo`` (sources, model,
            ...                      # keypoint names, skeleton); what cannot work fails here, in one line
        def write(self, frame):      # frame.result (FrameResult), frame.record (dict), frame.overlay (array or None)
            ...
        def end(self, stream, stats):   # a stream ended: finalise what is its own; return the paths written
            return []
        def close(self):             # the run ended: finalise the rest; return the paths written
            return []
        def discard(self):           # after a failure: remove what is half-written
            pass

``streams`` (a set of stream indices, None: all) says which streams a sink takes. ``SinkSet`` fans each result out:
``open(run)`` (every sink, before the first frame: a failure discards the ones opened and is raised), ``write(result)``
(the record built once, the overlay drawn once), ``end(stream, stats)``, ``close()``. A sink that
raises is reported in one line (``failures``) and discarded, the others go on; a sink that does not return from
``close`` within ``CLOSE_GRACE_S`` is named in ``failures`` and left to its daemon thread. To add an output (an MQTT
publisher, an HTTP live view), write a ``Sink`` and add it to the set ``video.app`` builds.
"""

import threading
import time
from collections import deque
from typing import Callable, Dict, List, Optional

from goatpose_edge.video.flow import Aborted
from goatpose_edge.video.results import FrameResult

#: seconds a sink gets to write what is queued and finalise once the run ends
CLOSE_GRACE_S = 30.0


class SinkFrame:
    """What a sink's ``write`` gets: the result, its record, and the overlay (None unless the sink wants it)."""

    __slots__ = ("result", "record", "overlay")

    def __init__(self, result: FrameResult, record: dict, overlay=None):
        self.result, self.record, self.overlay = result, record, overlay


class StreamInfo:
    """What a sink may know of a stream before its first frame; ``stats`` (``results.StreamStats``) is the stream's
    live figures, to read for display (frames, persons, dropped), never to write."""

    def __init__(self, index: int, source: str, live: bool, fps: Optional[float], frame_count: Optional[int], stats):
        self.index, self.source, self.live, self.fps, self.frame_count, self.stats = (index, source, live, fps,
                                                                                     frame_count, stats)


class RunInfo:
    """What a sink may know of the run before its first frame: the streams, the pose model's contract (name,
    keypoint names, skeleton), the detector spec, and ``elapsed()`` (seconds since the engine started)."""

    def __init__(self, streams: List[StreamInfo], contract, detector: str, elapsed: Callable[[], float]):
        self.streams, self.contract, self.detector, self.elapsed = streams, contract, detector, elapsed

    @property
    def model(self) -> str:
        return self.contract.name

    @property
    def keypoint_names(self) -> List[str]:
        return list(self.contract.keypoint_names)

    @property
    def skeleton(self) -> List[List[int]]:
        return [list(limb) for limb in self.contract.skeleton]


class Sink:
    """The sink contract (see the module docstring)."""

    name = "output"
    wants = "record"
    policy = "wait"
    streams = None  # type: Optional[set]
    last = False  # closed after every other sink (the run's summary, which names what they wrote)

    def open(self, run: RunInfo) -> None:
        pass

    def write(self, frame: SinkFrame) -> None:
        raise NotImplementedError

    def end(self, stream: int, stats) -> List[str]:
        return []

    def close(self) -> List[str]:
        return []

    def discard(self) -> None:
        pass


class SinkRunner:
    """One sink's thread and queue (``depth`` frames; "wait": ``offer`` waits for room, "latest": the oldest queued
    frame is dropped and counted in ``dropped``). Ends and the close are never dropped."""

    def __init__(self, sink: Sink, depth: int = 8):
        self.sink, self.depth = sink, max(1, depth)
        self.dropped = 0
        self.failure = None  # type: Optional[BaseException]
        self.written = []  # type: List[str]  # paths the sink finalised (its thread writes, read after join)
        self._queue = deque()
        self._frames = 0  # frames in the queue
        self._aborted = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="goatpose-sink", daemon=True)

    def start(self) -> "SinkRunner":
        self._thread.start()
        return self

    def room(self, deadline: Optional[float] = None) -> bool:
        """Wait until a frame can be offered without waiting (a "latest" sink always can); False when ``deadline``
        (``time.monotonic()``) passed first."""
        with self._cond:
            while self.sink.policy == "wait" and self._frames >= self.depth and not self._aborted:
                if deadline is None:
                    self._cond.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            if self._aborted:
                raise Aborted()
            return True

    def offer(self, frame: SinkFrame) -> None:
        with self._cond:
            if self.failure is not None:
                return
            if self._frames >= self.depth:  # "latest" (a "wait" sink was given room first)
                for index, message in enumerate(self._queue):
                    if message[0] == "frame":
                        del self._queue[index]
                        self._frames -= 1
                        self.dropped += 1
                        break
            self._queue.append(("frame", frame))
            self._frames += 1
            self._cond.notify_all()

    def end(self, stream: int, stats) -> None:
        self._message(("end", stream, stats))

    def close(self) -> None:
        self._message(("close",))

    def _message(self, message) -> None:
        with self._cond:
            self._queue.append(message)
            self._cond.notify_all()

    def abort(self) -> None:
        """Wake a producer waiting for room (the run is being abandoned)."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Whether the thread finished within ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                message = self._queue.popleft()
                if message[0] == "frame":
                    self._frames -= 1
                self._cond.notify_all()
            if self.failure is not None and message[0] != "close":
                continue
            try:
                if message[0] == "frame":
                    self.sink.write(message[1])
                elif message[0] == "end":
                    self.written += self.sink.end(message[1], message[2]) or []
                else:
                    self.written += self.sink.close() or []
                    return
            except Exception as exc:  # noqa: BLE001 - one line for this output, the others go on
                with self._cond:  # what is queued is not written; the close still comes
                    self.failure = exc
                    kept = [m for m in self._queue if m[0] == "close"]
                    self._queue.clear()
                    self._queue.extend(kept)
                    self._frames = 0
                    self._cond.notify_all()
                try:
                    self.sink.discard()
                except Exception:  # noqa: BLE001 - the failure above is what the user needs to read
                    pass
                if message[0] == "close":
                    return


class SinkSet:
    """The outputs of a run: every result to the sinks of its stream, the record built once, the overlay drawn once
    (on a copy) when a sink wants it. ``draw(result, image)`` draws the overlay in place."""

    def __init__(self, sinks: List[Sink], draw: Callable, raw_keypoints: bool = False, depth: int = 8):
        self.runners = [SinkRunner(sink, depth) for sink in sinks]
        self.draw, self.raw_keypoints = draw, raw_keypoints
        self.failures = []  # type: List[str]
        self._closed = False

    def open(self, run: RunInfo) -> "SinkSet":
        """Open every sink (in this thread, before the first frame), then start their threads; a sink that cannot
        open discards the ones opened before it and its error is raised."""
        opened = []
        try:
            for runner in self.runners:
                runner.sink.open(run)
                opened.append(runner.sink)
        except BaseException:
            self.discard()
            raise
        return self.start()

    def discard(self) -> None:
        """Remove what every sink has half-written (nothing was started, or the run is abandoned)."""
        for runner in self.runners:
            try:
                runner.sink.discard()
            except Exception:  # noqa: BLE001 - the error that led here is the one to report
                pass

    def start(self) -> "SinkSet":
        for runner in self.runners:
            runner.start()
        return self

    def _of(self, stream: int) -> List[SinkRunner]:
        return [r for r in self.runners if r.sink.streams is None or stream in r.sink.streams]

    def room(self, stream: int, deadline: Optional[float] = None) -> bool:
        """Wait (interruptibly) until every sink of ``stream`` takes a frame without waiting: ``write`` then never
        blocks, so a frame goes to all outputs or to none. False when ``deadline`` passed first (a stalled output
        during a stop)."""
        return all(runner.room(deadline) for runner in self._of(stream))

    def write(self, result: FrameResult) -> None:
        runners = self._of(result.stream)
        if not runners:
            return
        record = result.record(self.raw_keypoints)
        overlay = None
        if any(r.sink.wants == "overlay" for r in runners):
            overlay = self.draw(result, result.image.copy())
        for runner in runners:
            runner.offer(SinkFrame(result, record, overlay if runner.sink.wants == "overlay" else None))

    def end(self, stream: int, stats) -> None:
        for runner in self._of(stream):
            runner.end(stream, stats)

    def close(self, grace: Optional[float] = None,
              before_last: Callable[[Dict[str, List[str]]], None] = lambda written: None) -> Dict[str, List[str]]:
        """Finalise every sink (each within ``grace``): the others first, then ``before_last(written so far)``, then
        the ``last`` ones (the summary); the paths each wrote by sink name; ``failures`` gets a line per sink that
        failed or did not finish."""
        if self._closed:
            return {}
        self._closed = True
        grace = CLOSE_GRACE_S if grace is None else grace
        written = {}  # type: Dict[str, List[str]]
        for group in ([r for r in self.runners if not r.sink.last], [r for r in self.runners if r.sink.last]):
            if group and group[0].sink.last:
                before_last(written)
            for runner in group:
                runner.close()
            for runner in group:
                if not runner.join(grace):
                    runner.abort()
                    self.failures.append("{}: did not finish within {:g} s (left as it is)".format(
                        runner.sink.name, grace))
                elif runner.failure is not None:
                    self.failures.append("{} failed: {}".format(runner.sink.name, runner.failure))
                written[runner.sink.name] = list(runner.written)
        return written

    def abort(self) -> None:
        for runner in self.runners:
            runner.abort()

    @property
    def dropped(self) -> Dict[str, int]:
        return {r.sink.name: r.dropped for r in self.runners if r.dropped}
