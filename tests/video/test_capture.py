"""The capture thread: files never drop a frame, live sources drop stale ones (counted), a lost camera is reported."""

import time

import numpy as np
import pytest

from goatpose_edge.video.capture import FrameReader


class FakeCapture:
    """``count`` frames whose pixel value is their index, then read() fails (end of file / camera gone)."""

    def __init__(self, count, delay=0.0):
        self.count, self.delay, self.position, self.released = count, delay, 0, False

    def read(self):
        time.sleep(self.delay)
        if self.position >= self.count:
            return False, None
        frame = np.full((4, 4, 3), self.position % 256, np.uint8)
        self.position += 1
        return True, frame

    def get(self, prop):
        return 40.0 * self.position  # ms, like CAP_PROP_POS_MSEC at 25 fps

    def release(self):
        self.released = True


def _consume(reader, pause):
    seen = []
    for frame in reader:
        seen.append(frame.index)
        time.sleep(pause)
    return seen


def test_file_never_drops_even_with_a_slow_consumer():
    capture = FakeCapture(30)
    reader = FrameReader(capture, live=False, queue_size=2).start()
    seen = _consume(reader, pause=0.005)
    reader.close()
    assert seen == list(range(30)) and reader.dropped == 0 and reader.ended == "end" and capture.released


def test_file_timestamps_are_index_over_fps():
    reader = FrameReader(FakeCapture(5), live=False, queue_size=8, fps=25.0).start()
    times = [f.timestamp for f in reader]
    reader.close()
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])


def test_live_source_drops_stale_frames_and_counts_them():
    reader = FrameReader(FakeCapture(60, delay=0.001), live=True, queue_size=1).start()
    seen = _consume(reader, pause=0.02)
    reader.close()
    assert reader.dropped > 0 and len(seen) + reader.dropped == 60
    assert seen == sorted(seen) and seen[-1] == 59  # newest frames win, order kept
    assert reader.ended == "lost"  # a camera that stops delivering is lost, not ended


def test_max_frames_and_close_stop_the_thread():
    reader = FrameReader(FakeCapture(1000), live=False, queue_size=2, max_frames=5).start()
    assert [f.index for f in reader] == [0, 1, 2, 3, 4] and reader.ended == "stopped"
    reader.close()
    endless = FrameReader(FakeCapture(10 ** 9), live=False, queue_size=2).start()
    next(iter(endless))
    started = time.perf_counter()
    endless.close()  # the consumer stops early: the reader thread must not hang on a full queue
    assert time.perf_counter() - started < 2 and not endless._thread.is_alive()
