"""``goatpose dashboard mqtt://HOST[:PORT][/PREFIX] --serve [HOST:]PORT``: a fleet's poses on one page.

Subscribes to every device under the prefix (``topics``: frame, meta, status, stats) and serves a page with a tile per
device and stream: the newest frame's skeletons drawn on a canvas from the keypoints alone (no video crosses the
network: a frame message is a few kilobytes), online / offline from the retained status and the last will, and fps,
persons and staleness per tile. The HTTP side is ``web``'s (the live view's): the same token rules, client limit and
one-line refusals::

    /          the page (static/dashboard.html)
    /events    Server-Sent Events: the state of every tile once, then the tiles that changed, at most
               ``updates_per_s`` times a second per client (the newest of each tile; what came between is skipped)
    /state     JSON: every tile, the broker connection, the counts of skipped messages, the clients
    /healthz   "ok"

Threads: paho's network thread is the one writer of the tiles (``receive``, under ``_cond``, which it notifies); each
client's thread waits on ``_cond`` for a version newer than the one it sent, no sooner than its next turn, and
takes a snapshot of what changed. A slow or stalled client holds one snapshot, never a queue. Memory is bounded
whatever the fleet does: at most ``max_tiles`` tiles and devices (more are skipped and counted), per tile the newest
frame (its persons compacted, a payload of at most ``MAX_PAYLOAD`` bytes), its meta and ``FPS_WINDOW`` times.

Device side rules: standard library and paho-mqtt, Python 3.6.
"""

import json
import math
import os
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.mqtt.client import BrokerUrl, TlsFiles, connect_and_wait, new_client
from goatpose_edge.mqtt.listener import decode_message
from goatpose_edge.mqtt.topics import subscription, valid_level
from goatpose_edge.web import Client, Handler, Site, check_access, netloc

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "dashboard.html")
#: a message larger than this is skipped (a frame of 30 persons is about 20 kB)
MAX_PAYLOAD = 256 * 1024
#: frames over which a stream's fps is measured
FPS_WINDOW = 32
#: the figures kept from a device's stats message
DEVICE_STATS = ("fps", "dropped_frames", "spool_messages")
#: at most this many persons per frame, keypoints per person, limbs and streams per device are kept
MAX_ITEMS = 256


@dataclass
class DashboardOptions:
    host: str = "127.0.0.1"  # address to listen on; anything but a loopback address needs ``token``
    port: int = 8080  # 0: any free port (``Dashboard.port`` says which)
    token: Optional[str] = None  # required of every request when set
    clients: int = 8  # requests served at once, at most (an open page holds one)
    updates_per_s: float = 4.0  # updates sent to a page per second, at most (each the newest of every tile)
    max_tiles: int = 256  # device/stream tiles (and devices) kept, at most; more are skipped and counted
    connect_timeout_s: float = 10.0  # how long the start waits for the broker's answer

    def check(self) -> "DashboardOptions":
        """``ValueError`` naming the option for anything that cannot work."""
        check_access(self.host, self.port, self.token, self.clients)
        if not 0 < self.updates_per_s < float("inf"):
            raise ValueError("--updates-per-s {}: a positive number".format(self.updates_per_s))
        if self.max_tiles < 1:
            raise ValueError("--max-tiles {}: at least 1".format(self.max_tiles))
        return self


class _Device:
    """A device's status and stats (written by paho's thread only, under the dashboard's condition)."""

    def __init__(self):
        self.state = "unknown"  # online / offline (its retained status, or its last will); unknown before either
        self.stats = {}  # type: Dict[str, float]  # DEVICE_STATS from its newest stats message


class _Tile:
    """One device's stream (written by paho's thread only, under the dashboard's condition)."""

    def __init__(self, device: str, stream: str):
        self.device, self.stream = device, stream
        self.version = 0  # the dashboard's version when this tile last changed
        self.frame = None  # type: Optional[dict]  # the newest frame: index, size [w, h], persons (compact)
        self.run = ""  # the run the newest frame is of
        self.frames = 0  # frame messages received
        self.seen = None  # type: Optional[float]  # monotonic seconds the newest frame arrived
        self.times = deque(maxlen=FPS_WINDOW)  # (monotonic arrival seconds, seq) of the run's newest frames
        self.skeleton = []  # type: List[List[int]]  # limbs [i, j] from the stream's meta
        self.source = ""  # from the meta
        self.model = ""  # from the meta or the frame

    def fps(self) -> float:
        """Frames per second the device delivered over the run's last ``FPS_WINDOW`` frames: seqs over arrival times,
        so a frame lost on the way counts (a file's capture times would not do: its frames are read ahead)."""
        if len(self.times) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.times[0], self.times[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


class _Handler(Handler):
    """The dashboard's routes (``Handler`` does the token, the client slot, the page and /healthz)."""

    def _state(self, site: "Dashboard", client: Client) -> None:
        self._reply(200, json.dumps(site.state()).encode("utf-8"), "application/json")

    def _events(self, site: "Dashboard", client: Client) -> None:
        self._streaming("text/event-stream")
        since, interval, turn = 0, 1.0 / site.options.updates_per_s, 0.0
        while True:
            state = site.next_state(since, turn)
            if state is None:
                break
            if since:
                client.skipped += max(0, state["version"] - since - 1)
            since, turn = state["version"], time.monotonic() + interval
            self.wfile.write("data: {}\n\n".format(json.dumps(state, separators=(",", ":"))).encode("utf-8"))
            self.wfile.flush()
            client.sent += 1
        self.wfile.write(b"event: end\ndata: {}\n\n")


class Dashboard(Site):
    """The fleet page (see the module docstring). ``open`` listens and connects (one-line ``GoatPoseError`` when
    either cannot work), ``close`` ends both; ``receive`` is what paho's thread calls for each message."""

    handler = _Handler
    not_found = b"not found: / /events /state /healthz\n"
    busy = b"too many clients (--serve-clients)\n"

    def __init__(self, url: BrokerUrl, options: DashboardOptions, tls: Optional[TlsFiles] = None,
                 client_id: Optional[str] = None, log: Callable[[str], None] = lambda line: None):
        Site.__init__(self)
        self.url, self.options, self.tls, self.log = url, options, tls or TlsFiles(), log
        self.client_id = client_id or "goatpose-dashboard-{}-{}".format(
            re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:32], os.getpid())
        self.client = None
        self._version = 0  # changes so far (paho's thread)
        self._tiles = {}  # type: Dict[Tuple[str, str], _Tile]
        self._devices = {}  # type: Dict[str, _Device]
        self._counts = {"malformed": 0, "foreign": 0, "over_limit": 0}  # skipped messages (paho's thread)
        self._connected = False  # paho's thread
        self._refused = None  # type: Optional[int]

    # -- the owner's thread ---------------------------------------------------------------------------------------

    def open(self) -> None:
        """Listen (a port in use or an address not of this machine: one line), then connect to the broker and wait
        for its answer (unreachable, refused, silent: one line, and the port is freed)."""
        try:
            self.options.check()
        except ValueError as exc:
            raise GoatPoseError(str(exc)) from None
        with open(PAGE, "rb") as page:
            self.page = page.read()
        self.listen(self.options.host, self.options.port, self.options.token, self.options.clients)
        try:
            self._connect()
        except BaseException:
            self.shut()
            raise
        self.log("dashboard: {} (devices under {})".format(self.page_url, self.url.describe()))

    def _connect(self) -> None:
        self.client = new_client(self.client_id, self.url, self.tls, on_connect=self._on_connect,
                                 on_disconnect=self._on_disconnect, on_message=self._on_message)
        connect_and_wait(self.client, self.url, 30, self._cond, lambda: (self._connected, self._refused),
                         self.options.connect_timeout_s)

    @property
    def page_url(self) -> str:
        return "http://{}:{}/".format(netloc(self.options.host), self.port)

    def close(self) -> None:
        """The broker connection ended, every response ended, the port free."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        self.shut()

    def wait(self, stop: Optional[threading.Event] = None) -> None:
        """Until ``stop`` is set (or Ctrl-C / SIGTERM: ``KeyboardInterrupt``), then ``close``."""
        try:
            (stop or threading.Event()).wait()
        finally:
            self.close()

    # -- paho's thread --------------------------------------------------------------------------------------------

    def _on_connect(self, rc: int) -> None:
        with self._cond:
            if rc != 0:
                self._refused = rc
            else:
                self._connected = True
                self._version += 1
                self.client.subscribe(subscription(self.url.prefix), qos=1)  # again after every reconnect
            self._cond.notify_all()

    def _on_disconnect(self, rc: int) -> None:
        with self._cond:
            self._connected = False
            self._version += 1
            self._cond.notify_all()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.receive(topic, payload, time.monotonic())

    def receive(self, topic: str, payload: bytes, now: float) -> None:
        """One message: the tile (or device) it is about updated, the clients notified; a message that is malformed,
        too large, outside the layout or beyond ``max_tiles`` is skipped and counted."""
        try:
            if len(payload) > MAX_PAYLOAD:
                raise ValueError("{} bytes".format(len(payload)))
            message = decode_message(self.url.prefix, topic, payload)
            if message is not None:
                update = _UPDATES[message[2]](message[3], now)
        except ValueError:
            self._count("malformed")
            return
        if message is None:
            self._count("foreign")
            return
        device, stream, kind, _ = message
        with self._cond:
            if kind in ("status", "stats"):
                entry = self._device(device)
                if entry is None:
                    return
                if kind == "status":
                    entry.state = update["state"]
                    for index in update["streams"]:  # the streams it announced get their tiles
                        self._tile(device, index)
                else:
                    entry.stats = update
                self._changed(device)
                return
            if kind == "track":  # nothing to show
                return
            tile = self._tile(device, stream)
            if tile is None:
                return
            if kind == "meta":
                tile.skeleton, tile.source, tile.model = update["skeleton"], update["source"], update["model"]
            else:
                if update["run"] != tile.run:
                    tile.run = update["run"]
                    tile.times.clear()
                tile.frame, tile.seen = update["frame"], now
                tile.frames += 1
                tile.model = update["model"] or tile.model
                tile.times.append(update["time"])
            self._changed(device, tile)

    def _count(self, what: str) -> None:
        with self._cond:
            self._counts[what] += 1
            self._version += 1
            self._cond.notify_all()

    def _device(self, device: str) -> Optional[_Device]:
        entry = self._devices.get(device)
        if entry is None:
            if len(self._devices) >= self.options.max_tiles:
                self._counts["over_limit"] += 1
                return None
            entry = self._devices[device] = _Device()
        return entry

    def _tile(self, device: str, stream: str) -> Optional[_Tile]:
        tile = self._tiles.get((device, stream))
        if tile is None:
            if len(self._tiles) >= self.options.max_tiles or self._device(device) is None:
                self._counts["over_limit"] += 1
                return None
            tile = self._tiles[device, stream] = _Tile(device, stream)
            tile.version = self._version + 1
        return tile

    def _changed(self, device: str, tile: Optional[_Tile] = None) -> None:
        """A new version: ``tile``'s, or (a status or stats) every tile of ``device``."""
        self._version += 1
        for changed in [tile] if tile is not None else [t for t in self._tiles.values() if t.device == device]:
            changed.version = self._version
        self._cond.notify_all()

    # -- the connections' threads ---------------------------------------------------------------------------------

    def route(self, path: str) -> Tuple[Optional[str], Optional[int]]:
        return {"/": "page", "/index.html": "page", "/events": "events", "/state": "state",
                "/healthz": "healthz"}.get(path), None

    def state(self, since: int = 0, now: Optional[float] = None) -> dict:
        """What the page shows: the tiles changed after version ``since`` (every tile for 0), the broker, the counts,
        and ``version``, this state's."""
        now = time.monotonic() if now is None else now
        with self._cond:
            tiles = [self._tile_state(tile, now) for tile in self._tiles.values() if tile.version > since]
            return {"version": self._version, "broker": self.url.describe(), "connected": self._connected,
                    "devices": len(self._devices), "tiles": sorted(tiles, key=lambda t: _order(t["id"])),
                    "skipped": dict(self._counts), "clients": [c.to_dict() for c in self._clients],
                    "max_clients": self.options.clients, "bad_requests": self._bad_requests,
                    "server_error": self._accept_error}

    def _tile_state(self, tile: _Tile, now: float) -> dict:
        device = self._devices.get(tile.device) or _Device()
        return {"id": "{}/{}".format(tile.device, tile.stream), "device": tile.device, "stream": tile.stream,
                "state": device.state, "fps": round(tile.fps(), 2), "frames": tile.frames,
                "persons": len(tile.frame["persons"]) if tile.frame else 0,
                "age_s": round(now - tile.seen, 2) if tile.seen is not None else None,
                "frame": tile.frame, "skeleton": tile.skeleton, "source": tile.source, "model": tile.model,
                "device_stats": device.stats}

    def next_state(self, since: int, not_before: float) -> Optional[dict]:
        """The tiles changed after version ``since``, once there is a change and not before monotonic ``not_before``
        (a client's next turn); None once the dashboard closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                if self._version > since and now >= not_before:
                    return self.state(since, now)
                self._cond.wait(not_before - now if self._version > since else None)
            return None


# What each kind of message changes, checked before it is kept: ``ValueError`` for what the page could not show.

def _finite(values: List[float]) -> List[float]:
    """``values`` when all are finite (their sum is: one NaN or infinity spoils it), else ``ValueError``."""
    if not math.isfinite(sum(values)):
        raise ValueError("not finite numbers: {!r}".format(values))
    return values


def _frame_update(record: dict, now: float) -> dict:
    """A frame message's index, size [w, h] and persons (id, box, keypoints as the device rounded them), what the
    page draws; its run, model and (arrival seconds, seq) for the fps."""
    try:
        size = [int(record["size"][0]), int(record["size"][1])]
        if not (0 < size[0] <= 16384 and 0 < size[1] <= 16384):
            raise ValueError("size {}".format(size))
        persons = []
        for person in record["persons"][:MAX_ITEMS]:
            keypoints = [[float(x), float(y), float(s)] for x, y, s in person["keypoints"][:MAX_ITEMS]]
            box = _finite([float(v) for v in person["box"][:4]])
            _finite([sum(point) for point in keypoints])
            persons.append({"id": int(person["id"]), "box": box, "keypoints": keypoints})
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError("frame: {!r}".format(exc)) from None
    return {"frame": {"frame": int(record["frame"]), "size": size, "persons": persons}, "run": str(record["run"]),
            "model": str(record.get("model") or "")[:80],
            "time": (now, int(record["seq"]))}


def _meta_update(record: dict, now: float) -> dict:
    try:
        skeleton = [[int(i), int(j)] for i, j in (record.get("skeleton") or [])[:MAX_ITEMS]]
    except TypeError as exc:
        raise ValueError("skeleton: {}".format(exc)) from None
    return {"skeleton": skeleton, "source": str(record.get("source") or "")[:200],
            "model": str(record.get("model") or "")[:80]}


def _status_update(record: dict, now: float) -> dict:
    streams = record.get("streams") or []
    if not isinstance(streams, list):
        raise ValueError("streams: {!r}".format(streams))
    return {"state": str(record["state"])[:20], "streams": [str(s) for s in streams[:MAX_ITEMS] if valid_level(str(s))]}


def _stats_update(record: dict, now: float) -> dict:
    return {key: record[key] for key in DEVICE_STATS
            if isinstance(record.get(key), (int, float)) and math.isfinite(record[key])}


_UPDATES = {"frame": _frame_update, "meta": _meta_update, "status": _status_update, "stats": _stats_update,
            "track": lambda record, now: None}


def _order(key: str):
    """Tiles in device order, then stream order with numbers as numbers (2 before 10)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", key)]
