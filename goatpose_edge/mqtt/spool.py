"""The publisher's on-disk spool: every message that must arrive is appended here first and leaves only once the
broker acknowledged it, so nothing is lost through an outage, the end of a run, or a kill -9 (the OS has every
appended line; at most the messages still in the sink's queue are lost).

    spool = Spool("~/.cache/goatpose/spool/jetson-1", max_bytes=512 << 20)
    spool.append(topic, payload)           # the sink's thread
    message = spool.next()                 # the sender: (position, topic, payload) in order, or None
    spool.acked(position)                  # a PUBACK for that message (any order); the pointer moves in order
    spool.close()                          # the pointer saved: the next run with this folder sends the rest first

Layout: segment files ``NNNNNNNN.spool`` of lines ``TOPIC<tab>PAYLOAD`` (a topic has no control characters, a
compact JSON payload no newline; a new segment every ``SEGMENT_BYTES``; a line torn by a crash is cut off when the
spool opens), and ``acked.json`` with the position of the first message not yet acknowledged, rewritten
atomically at most once per ``SAVE_EVERY_S`` and on close (after a kill -9 the messages acknowledged since are sent
again: at least once, the consumer de-duplicates by run and seq). When the segments exceed ``max_bytes`` the oldest
is deleted, acknowledged or not; ``dropped`` counts its messages. A lock file keeps a second process out of the
folder. Thread-safe (one lock); standard library only (device side, Python 3.6).
"""

import json
import os
import threading
import time
from typing import List, Optional, Tuple

from goatpose_edge.errors import GoatPoseError

#: bytes per segment file
SEGMENT_BYTES = 1 << 20
#: the acknowledged position is saved at most this often (and on close)
SAVE_EVERY_S = 1.0


class SpoolError(GoatPoseError):
    """A spool folder that cannot be used (not writable, in use by another process)."""


def _cut_torn_tail(path: str) -> None:
    """Cut a last line without its newline (a crash mid-append): appending after it would damage the next one."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _segment_name(number: int) -> str:
    return "{:08d}.spool".format(number)


class Spool:
    """A durable FIFO of (topic, payload) in ``folder``, bounded by ``max_bytes``."""

    def __init__(self, folder: str, max_bytes: int):
        self.folder = os.path.abspath(os.path.expanduser(folder))
        self.max_bytes = max(int(max_bytes), 2 * SEGMENT_BYTES)
        self.dropped = 0  # messages deleted unsent because the spool was full
        self.appended = 0
        self._lock = threading.Lock()
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._lock_file = open(os.path.join(self.folder, "lock"), "a+")
        except OSError as exc:
            raise SpoolError("--spool {}: cannot use it ({})".format(self.folder, exc.strerror)) from exc
        try:
            import fcntl

            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            self._lock_file.close()
            raise SpoolError("--spool {} is in use by another goatpose process: give each run its own "
                             "--spool (or --device-id)".format(self.folder)) from None
        self._segments = sorted(int(n.split(".")[0]) for n in os.listdir(self.folder)
                                if n.endswith(".spool") and n.split(".")[0].isdigit())
        if self._segments:
            _cut_torn_tail(self._path(self._segments[-1]))
        self._sizes = {n: os.path.getsize(self._path(n)) for n in self._segments}
        self._acked = self._load_pointer()  # (segment, offset) of the first message not acknowledged
        if not self._segments or self._acked[0] > self._segments[-1]:
            self._segments.append(self._acked[0] if not self._segments else self._segments[-1] + 1)
            self._sizes[self._segments[-1]] = 0
        self._acked = max(self._acked, (self._segments[0], 0))
        self._read = self._acked  # the next message to hand to the sender
        self._reader = None  # (segment, file) the sender reads
        self._writer = open(self._path(self._segments[-1]), "ab")
        self._done = {}  # type: dict  # position -> end position of messages acknowledged out of order
        self._outstanding = []  # type: List[Tuple[Tuple[int, int], Tuple[int, int]]]  # handed out, in order
        self._saved_at = 0.0
        self._pending = self._count_pending()

    def _path(self, number: int) -> str:
        return os.path.join(self.folder, _segment_name(number))

    def _load_pointer(self) -> Tuple[int, int]:
        try:
            with open(os.path.join(self.folder, "acked.json")) as f:
                record = json.load(f)
            return int(record["segment"]), int(record["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return (0, 0)

    def _count_pending(self) -> int:
        count = 0
        for number in self._segments:
            if number < self._acked[0]:
                continue
            with open(self._path(number), "rb") as f:
                if number == self._acked[0]:
                    f.seek(self._acked[1])
                count += sum(1 for line in f if line.endswith(b"\n"))
        return count

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged (on disk)."""
        with self._lock:
            return self._pending

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def append(self, topic: str, payload: str) -> None:
        if "\t" in topic or "\n" in topic or "\n" in payload:
            raise ValueError("a spooled topic has no tab or newline and a payload no newline")
        line = (topic + "\t" + payload + "\n").encode("utf-8")
        with self._lock:
            current = self._segments[-1]
            if self._sizes[current] and self._sizes[current] + len(line) > SEGMENT_BYTES:
                self._writer.close()
                current += 1
                self._segments.append(current)
                self._sizes[current] = 0
                self._writer = open(self._path(current), "ab")
            self._writer.write(line)
            self._writer.flush()  # in the OS's hands: a kill -9 of this process loses nothing appended
            self._sizes[current] += len(line)
            self.appended += 1
            self._pending += 1
            while sum(self._sizes.values()) > self.max_bytes and len(self._segments) > 1:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        oldest = self._segments.pop(0)
        start = self._acked[1] if self._acked[0] == oldest else 0
        with open(self._path(oldest), "rb") as f:
            f.seek(start)
            lost = sum(1 for line in f if line.endswith(b"\n"))
        self.dropped += lost
        self._pending -= lost
        del self._sizes[oldest]
        if self._reader is not None and self._reader[0] == oldest:
            self._reader[1].close()
            self._reader = None
        os.remove(self._path(oldest))
        first = (self._segments[0], 0)
        self._acked = max(self._acked, first)
        self._read = max(self._read, first)
        self._outstanding = [o for o in self._outstanding if o[0] >= first]

    def next(self) -> Optional[Tuple[Tuple[int, int], str, str]]:
        """The next message to send: (position, topic, payload), in append order; None when all were handed out."""
        with self._lock:
            while True:
                segment, offset = self._read
                if self._reader is None or self._reader[0] != segment:
                    if self._reader is not None:
                        self._reader[1].close()
                    if segment not in self._sizes:
                        return None
                    self._reader = (segment, open(self._path(segment), "rb"))
                handle = self._reader[1]
                handle.seek(offset)
                line = handle.readline()
                if line.endswith(b"\n"):
                    end = (segment, offset + len(line))
                    self._read = end
                    self._outstanding.append(((segment, offset), end))
                    topic, tab, payload = line[:-1].decode("utf-8", "replace").partition("\t")
                    if tab:
                        return (segment, offset), topic, payload
                    self._done[(segment, offset)] = end  # not a message (damaged on disk): skipped
                    self._settle()
                    continue
                if segment == self._segments[-1]:
                    return None
                self._read = (self._segments[self._segments.index(segment) + 1], 0)

    def acked(self, position: Tuple[int, int]) -> None:
        """The broker acknowledged the message at ``position``; the pointer moves over every message acknowledged
        in order; fully acknowledged segments are deleted."""
        with self._lock:
            for start, end in self._outstanding:
                if start == position:
                    self._done[start] = end
                    break
            else:
                return
            self._settle()

    def _settle(self) -> None:
        while self._outstanding and self._outstanding[0][0] in self._done:
            start, end = self._outstanding.pop(0)
            del self._done[start]
            self._acked = end
            self._pending -= 1
        while len(self._segments) > 1 and self._acked[0] > self._segments[0]:
            oldest = self._segments.pop(0)
            del self._sizes[oldest]
            if self._reader is not None and self._reader[0] == oldest:
                self._reader[1].close()
                self._reader = None
            os.remove(self._path(oldest))
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    def _save(self) -> None:
        tmp = os.path.join(self.folder, ".acked.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"segment": self._acked[0], "offset": self._acked[1]}, f)
        os.replace(tmp, os.path.join(self.folder, "acked.json"))
        self._saved_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._writer.close()
            if self._reader is not None:
                self._reader[1].close()
                self._reader = None
            self._save()
            self._lock_file.close()
