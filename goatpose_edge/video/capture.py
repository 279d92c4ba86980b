"""The capture thread: reads a source into a bounded queue so decoding overlaps inference.

Files never drop a frame (the reader waits for room); live sources keep only the newest frames (when the queue is
full the oldest frame is dropped and counted), so the output follows the camera instead of lagging behind it.
Frames are handed on as uint8 BGR [H, W, 3] whatever the backend delivers (a GStreamer GRAY8 appsink, a 16-bit
camera, BGRA): see ``imagefile.to_bgr8``.
"""

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np

from goatpose_edge.imagefile import to_bgr8

_END = object()


@dataclass
class Frame:
    index: int  # position in the source (frames dropped before it included)
    timestamp: float  # seconds: index / fps for files (the container's nominal rate), wall-clock time for live sources
    image: np.ndarray  # BGR [H, W, 3] uint8


class FrameReader:
    """``for frame in reader:`` yields ``Frame``s read by a background thread; ``close()`` stops it. ``max_frames``
    bounds the frames read from a file (a live source is bounded by its consumer, which counts processed frames).

    After the iteration ends, ``ended`` says why: "end" (a file's last frame), "lost" (a live source stopped
    delivering), "stopped" (``close`` or ``max_frames``), or "error: ..." (an exception in OpenCV)."""

    def __init__(self, capture, live: bool, queue_size: int = 4, max_frames: Optional[int] = None,
                 fps: Optional[float] = None):
        self.capture = capture
        self.live = live
        self.max_frames = max_frames
        self.queue = queue.Queue(maxsize=max(1, queue_size))
        self.dropped = 0
        self.read_count = 0
        self.ended = ""
        self.busy_s = 0.0  # seconds spent reading and converting frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="goatpose-capture", daemon=True)
        # OpenCV's CAP_PROP_POS_MSEC is the current, the previous or the next frame's time depending on the
        # container and OpenCV version: a file's frame time is its index at the container's nominal rate instead
        self.fps = fps if fps and 0 < fps < 1000 else None

    def start(self) -> "FrameReader":
        self._thread.start()
        return self

    def _put(self, item) -> None:
        if self.live:
            while True:
                try:
                    self.queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        stale = self.queue.get_nowait()
                        if stale is not _END:
                            self.dropped += 1
                    except queue.Empty:
                        pass
        while not self._stop.is_set():  # a file: wait for room, never drop
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        import cv2

        try:
            while not self._stop.is_set():
                if not self.live and self.max_frames is not None and self.read_count >= self.max_frames:
                    self.ended = "stopped"
                    break
                start = time.perf_counter()
                ok, image = self.capture.read()
                if not ok or image is None:
                    self.ended = "lost" if self.live else "end"
                    break
                if self.live:
                    timestamp = time.time()
                elif self.fps:
                    timestamp = self.read_count / self.fps
                else:
                    timestamp = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1e3
                frame = Frame(self.read_count, timestamp, to_bgr8(image, "frame {}".format(self.read_count)))
                self.busy_s += time.perf_counter() - start
                self._put(frame)
                self.read_count += 1
            else:
                self.ended = self.ended or "stopped"
        except Exception as exc:  # noqa: BLE001 - reported by the consumer as one line
            self.ended = "error: {}: {}".format(type(exc).__name__, exc)
        finally:
            self.capture.release()  # here, in the thread that reads: never while a read() is under way
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self.queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():  # the consumer is gone: make room for the end marker
                    try:
                        self.queue.get_nowait()
                    except queue.Empty:
                        pass

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            yield item

    def frames(self, halted: Callable[[], bool]) -> Iterator[Frame]:
        """Like iterating, but ends as soon as ``halted()`` is true, even while the source delivers nothing (a
        camera that hangs never holds up a stop)."""
        while True:
            try:
                item = self.queue.get(timeout=0.05)
            except queue.Empty:
                if halted():
                    return
                continue
            if item is _END:
                return
            yield item

    def close(self) -> None:
        """Stop the thread; it releases the capture itself. A read() that hangs (a dead network camera) is left to
        the daemon thread rather than releasing the capture under it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self.ended = self.ended or "stopped"
        elif self._thread.ident is None:  # never started
            self.capture.release()
