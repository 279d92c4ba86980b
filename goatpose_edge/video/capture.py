"""The capture thread: reads a source into a bounded queue so decoding overlaps inference.

Files never drop a frame (the reader waits for room); live sources keep only the newest frames (when the queue is
full the oldest frame is dropped and counted), so the output follows the camera instead of lagging behind it.
Frames are handed on as uint8 BGR [H, W, 3] whatever the backend delivers (a GStreamer GRAY8 appsink, a 16-bit
camera, BGRA): see ``imagefile.to_bgr8``.
"""

import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from goatpose_edge.imagefile import to_bgr8
from goatpose_edge.video.flow import END, Channel


@dataclass
class Frame:
    index: int  # position in the source (frames dropped before it included)
    timestamp: float  # seconds: index / fps for files (the container's nominal rate), wall-clock time for live sources
    image: np.ndarray  # BGR [H, W, 3] uint8
    captured: float = 0.0  # wall-clock time (Unix seconds) when it was read


class FrameReader:
    """``for frame in reader:`` yields ``Frame``s read by a background thread into ``channel`` (a ``flow.Channel``:
    "wait" for a file, "latest" for a live source, whose ``dropped`` counts what was replaced); ``close()`` stops it.
    ``max_frames`` bounds the frames read from a file (a live source is bounded by its consumer).

    After the iteration ends, ``ended`` says why: "end" (a file's last frame), "lost" (a live source stopped
    delivering), "stopped" (``halt``, ``close`` or ``max_frames``), or "error: ..." (an exception in OpenCV)."""

    def __init__(self, capture, live: bool, queue_size: int = 4, max_frames: Optional[int] = None,
                 fps: Optional[float] = None):
        self.capture = capture
        self.live = live
        self.max_frames = max_frames
        self.channel = Channel("capture", max(1, queue_size), "latest" if live else "wait")
        self.read_count = 0
        self.ended = ""  # written by the reading thread before it closes the channel
        self.busy_s = 0.0  # seconds spent reading and converting frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="goatpose-capture", daemon=True)
        # OpenCV's CAP_PROP_POS_MSEC is the current, the previous or the next frame's time depending on the
        # container and OpenCV version: a file's frame time is its index at the container's nominal rate instead
        self.fps = fps if fps and 0 < fps < 1000 else None

    @property
    def dropped(self) -> int:
        return self.channel.dropped

    def start(self) -> "FrameReader":
        self._thread.start()
        return self

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
                frame = Frame(self.read_count, timestamp, to_bgr8(image, "frame {}".format(self.read_count)),
                              time.time())
                self.busy_s += time.perf_counter() - start
                self.channel.put(frame)  # a file waits for room; a live source replaces the oldest frame
                self.read_count += 1
            else:
                self.ended = self.ended or "stopped"
        except Exception as exc:  # noqa: BLE001 - reported by the consumer as one line
            self.ended = "error: {}: {}".format(type(exc).__name__, exc)
        finally:
            self.capture.release()  # here, in the thread that reads: never while a read() is under way
            self.channel.close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self.channel.get()
            if item is END:
                return
            yield item

    def halt(self) -> None:
        """Read no more: the frames not yet taken are discarded and the iteration ends at once (a camera that hangs
        never holds up a stop)."""
        self._stop.set()
        self.channel.halt()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; it releases the capture itself. A read() that hangs (a dead network camera) is left to
        the daemon thread rather than releasing the capture under it."""
        self.halt()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        elif self._thread.ident is None:  # never started
            self.capture.release()
