"""``goatpose listen mqtt://HOST[:PORT][/PREFIX]``: the other end of ``--publish``. Subscribes to every device's
messages (or one device's), prints a line per device and stream every few seconds (online / offline, fps, persons,
last seen), and with ``out`` appends each stream's frames to ``OUT/DEVICE/STREAM.jsonl``: every frame once
(de-duplicated by run and seq: the publisher sends at least once), gaps in a run's seq counted and reported. A
malformed message or a topic outside the layout is skipped and counted, never fatal.

    listener = Listener(parse_broker_url("mqtt://broker.lan"), out="archive")
    listener.run(stop)                      # until ``stop`` (a threading.Event) is set, Ctrl-C or SIGTERM
"""

import json
import os
import threading
import time
from collections import deque
from typing import Callable, Dict, List, Optional, Tuple

from goatpose_edge.mqtt.client import BrokerError, BrokerUrl, TlsFiles, connect_and_wait, new_client
from goatpose_edge.mqtt.topics import parse_topic, subscription, valid_level

#: seconds between the live lines
REPORT_EVERY_S = 2.0
#: the window the live fps and persons are measured over
RATE_WINDOW_S = 5.0


def default_client_id(url: BrokerUrl, device: Optional[str]) -> str:
    """The listener's client id unless --client-id says otherwise: this host, the prefix and the device filter (two
    listeners with one id would take each other's session: give each its own --client-id)."""
    import socket

    name = "goatpose-listen-{}-{}-{}".format(socket.gethostname().split(".")[0], url.prefix, device or "all")
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:64]


def decode_message(prefix: str, topic: str, payload: bytes) -> Optional[Tuple[str, Optional[str], str, dict]]:
    """(device, stream or None, kind, record) of a message under ``prefix``; None for a topic outside the layout;
    ``ValueError`` for a malformed one: not a JSON object, a status without "state", a frame without "run", "seq",
    "persons" (a list) or "frame"."""
    parsed = parse_topic(prefix, topic)
    if parsed is None:
        return None
    device, stream, kind = parsed
    try:
        record = json.loads(payload.decode("utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not an object")
        if kind == "status":
            str(record["state"])
        elif kind == "frame":
            str(record["run"]), int(record["seq"]), len(record["persons"]), int(record["frame"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError("malformed {} message on {}: {}".format(kind, topic, exc)) from None
    return device, stream, kind, record


class _Seqs:
    """The seqs of one run of one stream: every seq up to ``high`` was seen, ``above`` holds the later ones."""

    def __init__(self):
        self.high, self.above = -1, set()

    def add(self, seq: int) -> bool:
        """False for a duplicate."""
        if seq <= self.high or seq in self.above:
            return False
        self.above.add(seq)
        while self.high + 1 in self.above:
            self.high += 1
            self.above.discard(self.high)
        return True

    @property
    def gaps(self) -> int:
        """Seqs missing below the highest seen."""
        return (max(self.above) - self.high - len(self.above)) if self.above else 0


class _StreamView:
    def __init__(self):
        self.frames = self.duplicates = 0
        self.runs = {}  # type: Dict[str, _Seqs]
        self.recent = deque()  # (arrival, persons)
        self.last_seen = None  # type: Optional[float]
        self.file = None

    def gaps(self) -> int:
        return sum(seqs.gaps for seqs in self.runs.values())


class Listener:
    """Subscribes under ``url``'s prefix (to ``device`` only when given); see the module docstring."""

    def __init__(self, url: BrokerUrl, device: Optional[str] = None, out: Optional[str] = None,
                 tls: Optional[TlsFiles] = None, print_line: Callable[[str], None] = print,
                 client_id: Optional[str] = None):
        if device is not None and not valid_level(device):
            raise BrokerError("--device {!r}: one topic level, without /, +, # or control characters".format(device))
        self.url, self.device, self.out, self.print_line = url, device, out, print_line
        self.tls = tls or TlsFiles()
        # a stable id and a kept session: the broker queues what comes while this listener reconnects or restarts
        self.client_id = client_id or default_client_id(url, device)
        self.streams = {}  # type: Dict[Tuple[str, str], _StreamView]
        self.status = {}  # type: Dict[str, str]  # device -> online / offline
        self.malformed = self.foreign = 0
        self.connected = False
        self.refused = None  # type: Optional[int]
        self._lock = threading.Condition()

    # ---- paho's thread
    def _on_connect(self, rc: int) -> None:
        with self._lock:
            if rc != 0:
                self.refused = rc
            else:
                self.connected = True
                self.client.subscribe(subscription(self.url.prefix, self.device), qos=1)
            self._lock.notify_all()

    def _on_disconnect(self, rc: int) -> None:
        with self._lock:
            self.connected = False

    def _on_message(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.receive(topic, payload, time.monotonic())

    def receive(self, topic: str, payload: bytes, now: float) -> None:
        """One message (the caller holds the lock): counted, de-duplicated, written."""
        try:
            message = decode_message(self.url.prefix, topic, payload)
        except ValueError:
            self.malformed += 1
            return
        if message is None:
            self.foreign += 1
            return
        device, stream, kind, record = message
        if kind == "status":
            self.status[device] = str(record["state"])
            return
        if kind != "frame":
            return
        run, seq, persons = str(record["run"]), int(record["seq"]), len(record["persons"])
        view = self.streams.setdefault((device, stream), _StreamView())
        view.last_seen = now
        if not view.runs.setdefault(run, _Seqs()).add(seq):
            view.duplicates += 1
            return
        view.frames += 1
        view.recent.append((now, persons))
        while view.recent and now - view.recent[0][0] > RATE_WINDOW_S:
            view.recent.popleft()
        if self.out is not None:
            self._write(device, stream, view, payload)

    def _write(self, device: str, stream: str, view: _StreamView, payload: bytes) -> None:
        if view.file is None:
            folder = os.path.join(self.out, device)
            os.makedirs(folder, exist_ok=True)
            view.file = open(os.path.join(folder, "{}.jsonl".format(stream)), "ab")
        view.file.write(payload.rstrip(b"\n") + b"\n")
        view.file.flush()

    # ---- the caller's thread
    def lines(self, now: float) -> List[str]:
        """The live line of each device and stream."""
        with self._lock:
            out = []
            devices = sorted(set(self.status) | set(d for d, _ in self.streams))
            for device in devices:
                streams = sorted((s for d, s in self.streams if d == device), key=lambda s: (len(s), s))
                if not streams:
                    out.append("{}: {}".format(device, self.status.get(device, "?")))
                for stream in streams:
                    view = self.streams[device, stream]
                    recent = [p for t, p in view.recent if now - t <= RATE_WINDOW_S]
                    out.append("{}/{}: {}, {:.1f} fps, {:.1f} persons, last seen {}, {} frames{}{}".format(
                        device, stream, self.status.get(device, "?"), len(recent) / RATE_WINDOW_S,
                        sum(recent) / len(recent) if recent else 0.0,
                        "{:.1f} s ago".format(now - view.last_seen) if view.last_seen is not None else "never",
                        view.frames, ", {} missing".format(view.gaps()) if view.gaps() else "",
                        ", {} duplicates skipped".format(view.duplicates) if view.duplicates else ""))
            if self.malformed or self.foreign:
                out.append("skipped: {} malformed message{}, {} outside the topic layout".format(
                    self.malformed, "s" if self.malformed != 1 else "", self.foreign))
            return out

    def run(self, stop: Optional[threading.Event] = None, connect_timeout_s: float = 10.0) -> None:
        """Listen until ``stop`` is set (or Ctrl-C / SIGTERM: ``KeyboardInterrupt``); raises ``BrokerError`` in one
        line when the broker cannot be reached or refuses the login."""
        self.client = new_client(self.client_id, self.url, self.tls, on_connect=self._on_connect,
                                 on_disconnect=self._on_disconnect, on_message=self._on_message, clean_session=False)
        connect_and_wait(self.client, self.url, 30, self._lock, lambda: (self.connected, self.refused),
                         connect_timeout_s)
        try:
            self.print_line("listening to {} ({})".format(self.url.describe(), subscription(self.url.prefix,
                                                                                         self.device)))
            stop = stop or threading.Event()
            while not stop.wait(REPORT_EVERY_S):
                for line in self.lines(time.monotonic()):
                    self.print_line(line)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            with self._lock:
                for view in self.streams.values():
                    if view.file is not None:
                        view.file.close()
            for line in self.lines(time.monotonic()):
                self.print_line(line)
