"""How the streaming engine's threads hand work over: channels with end markers, a per-stream window of frames in
flight, the newest-frame slots of asynchronous detection, and the one generic stage worker.

Every wait is a ``threading.Condition`` wait that the event it waits for wakes: no polling, no sleeps. Every waiting
call also wakes on ``abort()`` and raises ``Aborted``, so an engine that aborts empties every thread within a bound
(a thread inside native code leaves when that call returns). The policy of a queue that falls behind is a property of
the channel (after GStreamer's ``queue leaky=``): ``"wait"`` (files: the producer waits for room, nothing is lost) or
``"latest"`` (live: the oldest item is dropped and counted).

    channel = Channel("detect", producers=2)        # unbounded; END once both producers called close()
    channel.put(item); channel.close()              # one producer done
    item = channel.get()                            # an item, or END once closed and drained; Aborted on abort()

Standard library only (device side, Python 3.6).
"""

import threading
import time
from collections import deque
from typing import Callable, Optional


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: what ``get`` returns once a channel is closed and drained
END = _Marker("END")


class Aborted(Exception):
    """Raised by a waiting call once the engine aborts: the thread leaves."""


class _Ended:
    """What the channels share: a condition, how many producers are still open, and abort."""

    def __init__(self, producers: int):
        self._producers = producers
        self._aborted = False
        self._cond = threading.Condition()

    def close(self) -> None:
        """One producer is done; the last one ends it (readers drain it, then get ``END``)."""
        with self._cond:
            self._producers -= 1
            self._cond.notify_all()

    def abort(self) -> None:
        """Every waiting call raises ``Aborted``, now and later."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


class Channel(_Ended):
    """A FIFO between threads. ``maxsize`` None is unbounded (the engine bounds its frames by ``Window`` instead);
    ``policy`` "wait" makes ``put`` wait for room, "latest" drops the oldest item (``dropped`` counts them).
    ``producers``: how many ``close()`` calls end it (each producer closes once)."""

    def __init__(self, name: str, maxsize: Optional[int] = None, policy: str = "wait", producers: int = 1):
        if policy not in ("wait", "latest"):
            raise ValueError("policy must be wait or latest, got {!r}".format(policy))
        super().__init__(producers)
        self.name, self.maxsize, self.policy = name, maxsize, policy
        self.dropped = 0
        self._items = deque()

    def _full(self) -> bool:
        return self.maxsize is not None and len(self._items) >= self.maxsize

    def put(self, item) -> None:
        with self._cond:
            while self.policy == "wait" and self._full() and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise Aborted()
            if self._producers <= 0:  # halted (a stop): the item is not wanted any more
                return
            if self._full():
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self):
        """The next item; ``END`` once every producer closed and the items are drained."""
        with self._cond:
            while not self._items and self._producers > 0 and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise Aborted()
            if not self._items:
                return END
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_batch(self, limit: int) -> list:
        """Up to ``limit`` items: waits for the first, takes whatever else is already there; [] at the end."""
        with self._cond:
            while not self._items and self._producers > 0 and not self._aborted:
                self._cond.wait()
            if self._aborted:
                raise Aborted()
            batch = []
            while self._items and len(batch) < limit:
                batch.append(self._items.popleft())
            self._cond.notify_all()
            return batch

    def get_until(self, deadline: float):
        """Like ``get``, but None when nothing came by ``deadline`` (``time.monotonic()``)."""
        with self._cond:
            while not self._items and self._producers > 0 and not self._aborted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if self._aborted:
                raise Aborted()
            if not self._items:
                return END
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def halt(self) -> None:
        """End it now: what is queued is discarded, later puts are ignored, readers get ``END``."""
        with self._cond:
            self._producers = 0
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class Window:
    """At most ``size`` frames of each stream in flight: ``acquire(stream)`` waits for room (False once halted: admit
    no more), ``release(stream)`` when the caller has taken a frame's result. Every queue behind it can then be
    unbounded without growing memory, and no stage ever waits for room in another: no cycle of waits."""

    def __init__(self, streams: int, size: int):
        self.size = size
        self._in_flight = [0] * streams
        self._halted = False
        self._aborted = False
        self._cond = threading.Condition()

    def acquire(self, stream: int) -> bool:
        with self._cond:
            while self._in_flight[stream] >= self.size and not (self._halted or self._aborted):
                self._cond.wait()
            if self._aborted:
                raise Aborted()
            if self._halted:
                return False
            self._in_flight[stream] += 1
            return True

    def release(self, stream: int) -> None:
        with self._cond:
            self._in_flight[stream] -= 1
            self._cond.notify_all()

    def halt(self) -> None:
        with self._cond:
            self._halted = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


class NewestFrames(_Ended):
    """Asynchronous detection's input: per stream the newest frame offered (an older one not yet taken is replaced),
    taken by whichever detector is free, one detector per stream at a time. ``get()`` returns (stream, frame), or
    ``END`` once every producer closed and nothing is left; ``done(stream)`` marks a detection finished;
    ``outstanding(stream, received)``: whether a frame of the stream waits for a detector, or more detections of it
    started than the ``received`` results (each started detection sends exactly one)."""

    def __init__(self, streams: int, producers: int):
        super().__init__(producers)
        self._frames = [None] * streams
        self._busy = [False] * streams
        self._started = [0] * streams
        self._turn = 0

    def offer(self, stream: int, frame) -> None:
        with self._cond:
            if self._aborted:
                raise Aborted()
            self._frames[stream] = frame
            self._cond.notify_all()

    def _ready(self) -> Optional[int]:
        count = len(self._frames)
        for offset in range(count):
            stream = (self._turn + offset) % count
            if self._frames[stream] is not None and not self._busy[stream]:
                return stream
        return None

    def get(self):
        with self._cond:
            while True:
                if self._aborted:
                    raise Aborted()
                stream = self._ready()
                if stream is not None:
                    frame, self._frames[stream] = self._frames[stream], None
                    self._busy[stream] = True
                    self._started[stream] += 1
                    self._turn = stream + 1
                    return stream, frame
                if self._producers <= 0 and not any(f is not None for f in self._frames):
                    return END
                self._cond.wait()

    def done(self, stream: int) -> None:
        with self._cond:
            self._busy[stream] = False
            self._cond.notify_all()

    def outstanding(self, stream: int, received: int) -> bool:
        with self._cond:
            return self._frames[stream] is not None or self._started[stream] > received



class Stage:
    """A stage declared once: ``name`` (as reported), ``work(job)`` for each job taken from ``inbox`` (a ``Channel``
    or ``NewestFrames``) or ``work(job, own)`` where each worker owns one of ``owns`` (a runner, a detector: one
    thread per item); ``batch`` > 1 hands ``work`` a list of up to that many queued jobs; ``finished()`` tells a
    worker to leave before its inbox ends (a stage that knows from its state that every stream is done);
    ``leave()`` runs once per worker when it leaves normally (pass end markers on, close outputs); ``timed``: the
    busy time of ``work`` counts in the stage's figures."""

    def __init__(self, name: str, work: Callable, inbox, owns: Optional[list] = None, batch: int = 1,
                 finished: Callable[[], bool] = lambda: False, leave: Callable[[], None] = lambda: None,
                 timed: bool = True):
        self.name, self.work, self.inbox, self.owns, self.batch = name, work, inbox, owns, batch
        self.threads = len(owns) if owns else 1
        self.finished, self.leave, self.timed = finished, leave, timed


def run_stage(stage: Stage, work: Callable, fail: Callable[[str, BaseException], None],
              release: Callable[[], None] = lambda: None) -> None:
    """The one stage worker: take a job (or a batch) from the stage's inbox and ``work`` on it until the inbox ends
    or the stage is finished; then ``leave``. ``Aborted`` ends it quietly; any other exception goes to ``fail``
    (the engine aborts). ``release`` frees what this worker owns (its runner, its detector) on every way out."""
    try:
        while not stage.finished():
            job = stage.inbox.get_batch(stage.batch) if stage.batch > 1 else stage.inbox.get()
            if job is END or (stage.batch > 1 and not job):
                break
            work(job)
        stage.leave()
    except Aborted:
        pass
    except BaseException as exc:  # noqa: BLE001 - every stage failure ends the run as one error
        fail(stage.name, exc)
    finally:
        release()
