"""The sink runner on its own: a live ("latest") output keeps the newest frames and counts the rest, ends and the
close are never dropped, a file ("wait") output makes the producer wait for room, a failure is kept and the close
still runs."""

import threading

import numpy as np
import pytest

from goatpose_edge.video.flow import Aborted
from goatpose_edge.video.results import FrameResult
from goatpose_edge.video.sinks import Sink, SinkFrame, SinkRunner, SinkSet


def _frame(index, stream=0):
    result = FrameResult(stream, index, index / 25.0, np.zeros((4, 4, 3), np.uint8), [], [])
    return SinkFrame(result, result.record())


class _Gated(Sink):
    """Takes frames only while ``gate`` is open; records what it got."""

    def __init__(self, policy):
        self.policy = policy
        self.gate, self.got, self.ends, self.closed = threading.Event(), [], [], False

    def write(self, frame):
        self.gate.wait()
        self.got.append(frame.result.index)

    def end(self, stream, stats):
        self.ends.append(stream)
        return ["stream{}".format(stream)]

    def close(self):
        self.closed = True
        return ["all"]


def test_a_live_output_keeps_the_newest_frames_and_counts_the_rest():
    sink = _Gated("latest")
    runner = SinkRunner(sink, depth=2).start()
    for index in range(10):
        runner.room()  # never waits for a live output
        runner.offer(_frame(index))
    runner.end(0, None)
    runner.close()
    sink.gate.set()
    assert runner.join(10)
    assert sink.got[-2:] == [8, 9] and len(sink.got) + runner.dropped == 10 and runner.dropped >= 7
    assert sink.ends == [0] and sink.closed and runner.written == ["stream0", "all"]


def test_a_file_output_makes_the_producer_wait_for_room():
    sink = _Gated("wait")
    runner = SinkRunner(sink, depth=2).start()
    offered = []

    def produce():
        for index in range(6):
            runner.room()
            runner.offer(_frame(index))
            offered.append(index)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(0.5)
    assert producer.is_alive() and len(offered) <= 3  # 2 queued + 1 in write: the producer waits
    sink.gate.set()
    producer.join(10)
    runner.close()
    assert runner.join(10) and sink.got == list(range(6)) and runner.dropped == 0


def test_abort_wakes_a_producer_waiting_for_room():
    sink = _Gated("wait")
    runner = SinkRunner(sink, depth=1).start()
    runner.offer(_frame(0))
    runner.offer(_frame(1))
    runner.abort()
    with pytest.raises(Aborted):
        runner.room()
    sink.gate.set()


class _Fails(Sink):
    name = "broken"

    def __init__(self):
        self.discarded = self.closed = False

    def write(self, frame):
        raise OSError(28, "No space left on device")

    def close(self):
        self.closed = True
        return []

    def discard(self):
        self.discarded = True


def test_a_failing_output_is_discarded_and_reported_while_the_others_finish():
    broken, good = _Fails(), _Gated("wait")
    good.gate.set()
    sinks = SinkSet([broken, good], draw=lambda result, image: image).start()
    for index in range(5):
        sinks.room(0)
        sinks.write(_frame(index).result)
    sinks.close(grace=10)
    assert broken.discarded and broken.closed and good.got == list(range(5))
    assert sinks.failures == ["broken failed: [Errno 28] No space left on device"]
