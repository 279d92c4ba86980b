"""``goatpose video --publish mqtt://...``: every frame's record to an MQTT broker, at least once and in order per
stream, never slowing the pipeline.

The publisher is a sink (``video.sinks``) whose ``write`` only appends to the on-disk spool (``mqtt.spool``): the
network is the sender thread's and paho's, so a broker that stalls or is gone costs the pipeline nothing. The sender
hands the spool's messages to paho in order, at most ``window`` unacknowledged at a time (paho keeps those and sends
them again after a reconnect); a PUBACK moves the spool's pointer. While the broker is away the spool grows (bounded
by ``spool_max_mb``: the oldest are dropped and counted); after a reconnect it drains in order before what came
since. At the end of a run the sender waits up to ``close_grace_s`` for the acknowledgements (and for the broker to
come back); what is left stays in the spool, and the next run with the same spool sends it first. Retained ``status`` (online / offline, also the last
will) and ``meta`` messages are sent on every connect; ``stats`` (QoS 0) every ``stats_every_s``.

A broker that is down at the start does not stop the run (one line, then spooling and retries with backoff); what
will not fix itself fails before the first frame in one line: a malformed URL, a refused login, a TLS certificate
that does not verify.
"""

import json
import os
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, Optional

from goatpose_edge.mqtt.client import (CONNACK_REFUSALS, BrokerError, TlsFiles, new_client, parse_broker_url, refusal,
                                       wait_for_answer)
from goatpose_edge.mqtt.spool import Spool
from goatpose_edge.mqtt.topics import Topics, valid_level
from goatpose_edge.video.sinks import Sink

#: a followed person whose id is unseen for more than this many frames has ended (the tracker's max_age)
TRACK_GONE_FRAMES = 5


def default_device_id() -> str:
    """The host name, as one topic level."""
    name = socket.gethostname().split(".")[0] or "device"
    return "".join(c if valid_level(c) else "-" for c in name)


def default_spool(device: str) -> str:
    """Where a device's spool lives unless --spool says otherwise: ~/.cache/goatpose/spool/DEVICE."""
    return os.path.join(os.path.expanduser("~"), ".cache", "goatpose", "spool", device)


@dataclass
class PublishOptions:
    url: str  # mqtt://[USER@]HOST[:PORT][/PREFIX] or mqtts://...
    device_id: Optional[str] = None  # None: the host name
    spool: Optional[str] = None  # None: default_spool(device)
    spool_max_mb: float = 512.0  # the spool's bound on disk; beyond it the oldest messages are dropped
    ca: Optional[str] = None  # --mqtt-ca
    cert: Optional[str] = None  # --mqtt-cert
    key: Optional[str] = None  # --mqtt-key
    keepalive: int = 10  # seconds: a device gone without a word is offline (its last will) within 1.5 x this
    stats_every_s: float = 5.0
    window: int = 100  # messages handed to paho and not yet acknowledged
    close_grace_s: float = 5.0  # at the end, how long to wait for the acknowledgements
    connect_timeout_s: float = 5.0  # how long the start waits for the broker's answer to the login

    def check(self) -> "PublishOptions":
        url = parse_broker_url(self.url)
        TlsFiles(self.ca, self.cert, self.key).check(url)
        if self.device_id is not None and not valid_level(self.device_id):
            raise BrokerError("--device-id {!r}: one topic level, without /, +, # or control characters".format(
                self.device_id))
        if not self.spool_max_mb > 0:
            raise BrokerError("--spool-max-mb must be > 0, got {}".format(self.spool_max_mb))
        return self


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"))


class MqttPublisher(Sink):
    """The ``--publish`` sink (see the module docstring); ``log`` gets its few lines (unreachable broker, lost and
    regained connection, the end's account)."""

    name = "--publish"
    wants = "record"
    policy = "wait"  # never drops: ``write`` appends to the spool on disk and never waits for the network

    def __init__(self, options: PublishOptions, log: Callable[[str], None] = lambda line: None):
        self.options = options.check()
        self.url = parse_broker_url(options.url)
        self.device = options.device_id or default_device_id()
        self.topics = Topics(self.url.prefix, self.device)
        self.log = log
        self.run_id = uuid.uuid4().hex[:12]
        self.client = self.spool = self.sender = None
        self.connected = False
        self.refused = None  # type: Optional[int]
        self.failure = None  # type: Optional[BaseException]  # the spool failed: publishing stopped
        self.sent = self.acknowledged = 0
        self.seq = {}  # type: Dict[int, int]  # per stream: the next frame's seq (the sink's thread)
        self.tracks = {}  # type: Dict[int, Dict[int, list]]  # per stream: id -> [first, last, frames, score sum]
        self._inflight = {}  # type: Dict[int, tuple]  # mid -> spool position
        self._early = set()  # mids acknowledged before publish() returned
        self._closing = False
        self._cond = threading.Condition()
        self._said_down = False

    # ---- the sink contract
    def open(self, run) -> None:
        self.run = run
        self.spool = Spool(self.options.spool or default_spool(self.device), int(self.options.spool_max_mb * 2 ** 20))
        try:
            self._connect()
        except BaseException:
            self.spool.close()
            raise
        if self.spool.pending:
            self.log("mqtt: {} message{} left by an earlier run in {} go first".format(
                self.spool.pending, "s" if self.spool.pending != 1 else "", self.spool.folder))
        self.sender = threading.Thread(target=self._send, name="goatpose-mqtt", daemon=True)
        self.sender.start()

    def write(self, frame) -> None:
        result = frame.result
        stream = result.stream
        seq = self.seq.get(stream, 0)
        self.seq[stream] = seq + 1
        height, width = result.image.shape[:2]
        payload = dict(frame.record, device=self.device, stream=stream, run=self.run_id, seq=seq,
                       captured=_utc(result.captured or time.time()), size=[width, height], model=self.run.model)
        self.spool.append(self.topics.stream(stream, "frame"), _json(payload))
        self._follow(stream, result)
        with self._cond:
            self._cond.notify_all()

    def end(self, stream, stats):
        for ident in list(self.tracks.get(stream, {})):
            self._track_end(stream, ident)
        with self._cond:
            self._cond.notify_all()
        return []

    def close(self):
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + self.options.close_grace_s
            self._cond.notify_all()
        if self.sender is not None:
            self.sender.join(self.options.close_grace_s + 5)
        self._offline()
        left, dropped = self.spool.pending, self.spool.dropped
        self.spool.close()
        if self.failure is not None:
            raise BrokerError("publishing stopped: the spool failed ({}); {} message{} left in {}".format(
                self.failure, left, "s" if left != 1 else "", self.spool.folder))
        self.log("mqtt: {} sent, {} acknowledged{}{}".format(
            self.sent, self.acknowledged, "; {} left in {} (the next run sends them first)".format(
                left, self.spool.folder) if left else "",
            "; {} dropped: the spool was full (--spool-max-mb)".format(dropped) if dropped else ""))
        return []

    def discard(self) -> None:
        with self._cond:  # the sender leaves at once (nothing more is sent)
            self._closing, self._deadline = True, time.monotonic()
            self._cond.notify_all()
        if self.sender is not None:
            self.sender.join(5)
        if self.client is not None:
            self.client.loop_stop()
        if self.spool is not None:
            try:
                self.spool.close()
            except (OSError, ValueError):
                pass

    # ---- the connection
    def _connect(self) -> None:
        options, url = self.options, self.url
        self.client = new_client("goatpose-{}-{}".format(self.device, self.run_id), url,
                                 TlsFiles(options.ca, options.cert, options.key), on_connect=self._on_connect,
                                 on_disconnect=self._on_disconnect, on_publish=self._on_publish)
        self.client.will_set(self.topics.status, _json(self._status("offline")), qos=1, retain=True)
        try:
            self.client.connect(url.host, url.port, keepalive=options.keepalive)
            answered = True
        except ssl.SSLError as exc:
            verify = getattr(exc, "verify_message", None)  # Python >= 3.7; 3.6 says only the reason
            if verify or exc.reason == "CERTIFICATE_VERIFY_FAILED":
                raise BrokerError("TLS to {}: the broker's certificate does not verify{}: give the CA that signed it "
                                  "with --mqtt-ca".format(url.describe(), " ({})".format(verify) if verify else ""
                                                          )) from None
            raise BrokerError("TLS to {}: {} (check --mqtt-ca, --mqtt-cert, --mqtt-key)".format(
                url.describe(), exc.reason or exc)) from None
        except (OSError, ValueError) as exc:  # refused, unreachable, unknown host: it may come back
            answered = False
            self.client.connect_async(url.host, url.port, keepalive=options.keepalive)
            self._said_down = True
            self.log("mqtt: broker {} unreachable ({}): spooling to {}, retrying with backoff".format(
                url.describe(), getattr(exc, "strerror", None) or exc, self.spool.folder))
        self.client.loop_start()
        if not answered:
            return
        _, refused = wait_for_answer(self._cond, lambda: (self.connected, self.refused), options.connect_timeout_s)
        if refused in CONNACK_REFUSALS:  # silent or another code: it may come back, the spool keeps the frames
            self.client.loop_stop()
            raise BrokerError("broker {} refused the login: {}".format(url.describe(), refusal(refused)))

    def _status(self, state: str) -> dict:
        streams = [s.index for s in self.run.streams] if getattr(self, "run", None) else []
        return {"state": state, "device": self.device, "run": self.run_id, "streams": streams,
                "time": _utc(time.time())}

    def _on_connect(self, rc: int) -> None:
        if rc != 0:
            with self._cond:
                self.refused = rc
                self._cond.notify_all()
            return
        self.client.publish(self.topics.status, _json(self._status("online")), qos=1, retain=True)
        for stream in self.run.streams:
            self.client.publish(self.topics.stream(stream.index, "meta"), _json(self._meta(stream)), qos=1,
                                retain=True)
        with self._cond:
            self.connected = True
            if self._said_down:
                self.log("mqtt: connected to {}".format(self.url.describe()))
            self._said_down = False
            self._cond.notify_all()

    def _on_disconnect(self, rc: int) -> None:
        with self._cond:
            self.connected = False
            if not self._closing and not self._said_down and self.refused is None:
                self._said_down = True
                self.log("mqtt: connection to {} lost: spooling, reconnecting".format(self.url.describe()))
            self._cond.notify_all()

    def _on_publish(self, mid: int) -> None:
        with self._cond:
            position = self._inflight.pop(mid, None)
            if position is None:  # acknowledged before publish() returned, or not a spool message
                self._early.add(mid)
                self._cond.notify_all()
                return
            self.acknowledged += 1
            self._cond.notify_all()
        try:
            self.spool.acked(position)
        except Exception as exc:  # noqa: BLE001 - paho's thread must live on; said once, and at the end
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        with self._cond:
            first = self.failure is None
            self.failure = self.failure or exc
        if first:
            self.log("mqtt: the spool failed ({}): publishing stops; what is in it stays for the next run".format(exc))

    def _meta(self, stream) -> dict:
        return {"device": self.device, "stream": stream.index, "run": self.run_id, "source": stream.source,
                "live": stream.live, "fps": stream.fps, "frame_count": stream.frame_count, "model": self.run.model,
                "weights": self.run.contract.weights or "not recorded",
                "random_weights": self.run.contract.random_weights,
                "keypoint_names": self.run.keypoint_names, "skeleton": self.run.skeleton,
                "detector": self.run.detector}

    # ---- the sender thread
    def _send(self) -> None:
        try:
            self._send_loop()
        except Exception as exc:  # noqa: BLE001 - a disk error in the spool: one line, the run goes on
            self._failed(exc)

    def _send_loop(self) -> None:
        next_stats = time.monotonic() + self.options.stats_every_s
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._closing and (self.spool.pending == 0 or now >= self._deadline):
                        return  # all acknowledged, or the grace is over (connected or not): the rest stays spooled
                    if self.connected and len(self._inflight) < self.options.window:
                        message = self.spool.next()
                        if message is not None:
                            break
                    if now >= next_stats:
                        message = None
                        break
                    until = next_stats if not self._closing else min(next_stats, self._deadline)
                    self._cond.wait(max(0.0, until - now))
            if message is None:
                next_stats = time.monotonic() + self.options.stats_every_s
                if self.connected:
                    self.client.publish(self.topics.stats, _json(self._stats()), qos=0)
                continue
            position, topic, payload = message
            with self._cond:  # acknowledgements filed before this publish are of other messages (status, stats)
                self._early.clear()
            info = self.client.publish(topic, payload, qos=1)  # paho keeps it until PUBACK, across reconnects
            with self._cond:
                self.sent += 1
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acknowledged += 1
                    early = True
                else:
                    self._inflight[info.mid] = position
                    early = False
            if early:
                self.spool.acked(position)

    def _stats(self) -> dict:
        elapsed = max(self.run.elapsed(), 1e-9)
        frames = sum(s.stats.frames for s in self.run.streams)
        persons = sum(s.stats.persons for s in self.run.streams)
        return {"device": self.device, "run": self.run_id, "time": _utc(time.time()), "fps": round(frames / elapsed, 2),
                "persons_per_s": round(persons / elapsed, 2), "frames": frames,
                "dropped_frames": sum(s.stats.dropped for s in self.run.streams),
                "spool_messages": self.spool.pending, "spool_bytes": self.spool.size_bytes,
                "spool_dropped": self.spool.dropped, "sent": self.sent, "acknowledged": self.acknowledged,
                "in_flight": len(self._inflight)}

    def _offline(self) -> None:
        """A normal end says offline itself (retained), then disconnects; the last will is for the other ends."""
        if self.client is None:
            return
        if self.connected:
            info = self.client.publish(self.topics.status, _json(self._status("offline")), qos=1, retain=True)
            with self._cond:  # its PUBACK (``_on_publish`` files an unknown mid under _early), 2 s at most
                deadline = time.monotonic() + 2.0
                while info.mid not in self._early and self.connected and time.monotonic() < deadline:
                    self._cond.wait(max(0.0, deadline - time.monotonic()))
            self.client.disconnect()
        self.client.loop_stop()

    # ---- followed persons: a start when an id appears, an end when it has been gone TRACK_GONE_FRAMES frames
    def _follow(self, stream: int, result) -> None:
        tracks = self.tracks.setdefault(stream, {})
        for person, ident in zip(result.persons, result.ids):
            ident = int(ident)
            track = tracks.get(ident)
            if track is None:
                tracks[ident] = track = [result.index, result.index, 0, 0.0]
                self._track_message(stream, {"event": "start", "id": ident, "frame": result.index})
            track[1] = result.index
            track[2] += 1
            track[3] += float(person.score)
        for ident in [i for i, t in tracks.items() if result.index - t[1] > TRACK_GONE_FRAMES]:
            self._track_end(stream, ident)

    def _track_end(self, stream: int, ident: int) -> None:
        first, last, frames, score = self.tracks[stream].pop(ident)
        self._track_message(stream, {"event": "end", "id": ident, "first_frame": first, "last_frame": last,
                                     "frames": frames, "mean_score": round(score / max(frames, 1), 4)})

    def _track_message(self, stream: int, record: dict) -> None:
        record.update(device=self.device, stream=stream, run=self.run_id)
        self.spool.append(self.topics.stream(stream, "track"), _json(record))
