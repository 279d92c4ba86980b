"""``goatpose video --serve [HOST:]PORT``: the run's overlays and figures live in a browser, from the standard library.

``LiveView`` is a sink (``video.sinks``: policy "latest", wants the overlay) and an HTTP server (``HTTPServer`` with
``ThreadingMixIn``: a daemon thread per connection, Python 3.6)::

    /                  the page (static/live.html): a tile per stream, its overlay and figures
    /stream/N.mjpg     stream N's overlay as MJPEG (multipart/x-mixed-replace), at most ``width`` pixels wide and
                       ``fps`` frames a second
    /snapshot/N.jpg    stream N's newest overlay
    /events            Server-Sent Events: every frame's record (``FrameResult.record()``, the JSONL line) plus
                       "stream", its index
    /stats             JSON: per stream fps, frames, persons, followed persons, dropped frames; the clients
    /healthz           "ok"

Never in the way of the run: ``write`` (the sink's own thread) stores the newest overlay of its stream, its record
and figures, and encodes one JPEG at most ``fps`` times a second while someone watches the stream (once for all
clients), then notifies the clients through one condition. Each client's thread takes the newest JPEG (or the
records it has not sent) when its socket takes more; what was replaced meanwhile is counted as that client's
``skipped``, so a slow or stalled client holds one frame, never a queue, and never slows the pipeline. Memory: per
stream one overlay and one JPEG, and the last ``EVENTS_KEPT`` records.

Safe by default (``web``, the server the fleet dashboard shares): 127.0.0.1; any other address needs a token (``?token=`` or ``Authorization: Bearer``), checked on
every request (401, no image, otherwise); at most ``clients`` requests are served at once (503 beyond); a request
that does not arrive within ``REQUEST_TIMEOUT_S`` or a client that takes nothing for ``STALL_TIMEOUT_S`` is
disconnected; a garbage request gets a 400 and is counted. What cannot work (a port in use, a host that is not an
address of this machine, no stream) fails ``open``, before the first frame, in one line. ``close`` (the run ended)
ends every response, stops the server and frees the port.

Device side: standard library, numpy and OpenCV, Python 3.6.
"""

import json
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video.sinks import RunInfo, Sink, SinkFrame
from goatpose_edge.web import TOKEN_ENV, Client, Handler, Site, check_access, check_token, netloc, parse_address

__all__ = ["LiveOptions", "LiveView", "TOKEN_ENV", "check_token", "parse_address", "encode_jpeg"]

#: frame records kept for /events clients (one that falls further behind skips the oldest, counted)
EVENTS_KEPT = 256
#: JPEG quality of the streamed overlay
JPEG_QUALITY = 80
#: frames over which a stream's fps is measured
FPS_WINDOW = 32

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "live.html")
BOUNDARY = "goatpose-frame"


@dataclass
class LiveOptions:
    host: str = "127.0.0.1"  # address to listen on; anything but a loopback address needs ``token``
    port: int = 8080  # 0: any free port (``LiveView.port`` says which)
    token: Optional[str] = None  # required of every request when set
    width: int = 640  # streamed overlays at most this wide, pixels (narrower frames are not enlarged)
    fps: float = 10.0  # streamed overlays per second per stream, at most
    clients: int = 8  # requests served at once, at most

    def check(self) -> "LiveOptions":
        """``ValueError`` naming the option for anything that cannot work."""
        if self.width < 16:
            raise ValueError("--serve-width {}: at least 16 pixels".format(self.width))
        if not 0 < self.fps < float("inf"):
            raise ValueError("--serve-fps {}: a positive number".format(self.fps))
        check_access(self.host, self.port, self.token, self.clients)
        return self

    @property
    def netloc(self) -> str:
        return netloc(self.host)


class _Stream:
    """One stream's newest state. Every field is written by the sink's thread only, under the view's condition;
    the clients' threads read it under the same condition."""

    def __init__(self, info):
        self.info = info  # sinks.StreamInfo (its stats are the engine's, read only)
        self.received = 0  # frames that reached the view
        self.last_index = -1  # the newest frame's position in the source
        self.overlay = None  # the newest overlay, [H, W, 3] BGR (the sink set's copy, never written)
        self.jpeg = None  # type: Optional[bytes]  # the newest encoded overlay ...
        self.jpeg_frame = 0  # ... made from this frame (``received`` at the time) ...
        self.published = 0  # ... and its number: JPEGs made so far (a client that sent number n skips n+1..m-1)
        self.encoded_at = float("-inf")  # monotonic seconds of the last encode
        self.persons = 0  # in the newest frame
        self.followed = 0  # distinct track ids in the newest frame
        self.times = deque(maxlen=FPS_WINDOW)  # (monotonic seconds, the engine's frame count) per received frame
        self.watchers = 0  # MJPEG clients of this stream (written by their threads, under the condition)
        self.ended = False


class _Handler(Handler):
    """The live view's routes (``Handler`` does the token, the client slot, the page and /healthz)."""

    def _stats(self, view: "LiveView", client: Client) -> None:
        self._reply(200, json.dumps(view.stats()).encode("utf-8"), "application/json")

    def _snapshot(self, view: "LiveView", client: Client) -> None:
        jpeg = view.snapshot(client.stream)
        if jpeg is None:
            self._reply(404, "stream {} has no frame yet\n".format(client.stream).encode("utf-8"), "text/plain")
        else:
            self._reply(200, jpeg, "image/jpeg")

    def _mjpeg(self, view: "LiveView", client: Client) -> None:
        self._streaming("multipart/x-mixed-replace; boundary=" + BOUNDARY)
        after = None
        while True:
            jpeg, number = view.newest_jpeg(client.stream, after)
            if jpeg is None:
                break
            if after is not None:
                client.skipped += max(0, number - after - 1)
            after = number
            self.wfile.write("--{}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n".format(
                BOUNDARY, len(jpeg)).encode("ascii") + jpeg + b"\r\n")
            self.wfile.flush()
            client.sent += 1
        self.wfile.write("--{}--\r\n".format(BOUNDARY).encode("ascii"))

    def _events(self, view: "LiveView", client: Client) -> None:
        seq = view.event_seq()  # before the headers: a client that has them gets every record from then on
        self._streaming("text/event-stream")
        while True:
            events, finished = view.records_after(seq)
            if events:
                client.skipped += events[0][0] - seq - 1
                seq = events[-1][0]
                self.wfile.write("".join(text for _, text in events).encode("utf-8"))
                self.wfile.flush()
                client.sent += len(events)
            if finished:
                break
        self.wfile.write(b"event: end\ndata: {}\n\n")


class LiveView(Sink, Site):
    """The live view of a run (see the module docstring). ``log`` gets the URL once the server listens."""

    name = "--serve"
    wants = "overlay"
    policy = "latest"
    handler = _Handler
    not_found = b"not found: / /stream/N.mjpg /snapshot/N.jpg /events /stats /healthz\n"
    busy = b"too many clients (--serve-clients), or the run ended\n"

    def __init__(self, options: LiveOptions, log: Callable[[str], None] = lambda line: None):
        Site.__init__(self)
        self.options, self.log = options, log
        self._streams = []  # type: List[_Stream]
        self._events = deque(maxlen=EVENTS_KEPT)  # (sequence number, SSE text) of the newest records
        self._event_seq = 0  # records published so far
        self._run = None  # type: Optional[RunInfo]

    # -- the sink (the sink runner's thread, after ``open`` in the caller's) ------------------------------------

    def open(self, run: RunInfo) -> None:
        if not run.streams:
            raise GoatPoseError("--serve: there is no stream to serve: give at least one source")
        try:
            self.options.check()
        except ValueError as exc:
            raise GoatPoseError(str(exc)) from None
        with open(PAGE, "rb") as page:
            self.page = page.read()
        self._run = run
        self._streams = [_Stream(info) for info in run.streams]
        self.listen(self.options.host, self.options.port, self.options.token, self.options.clients)
        self.log("live view: {}".format(self.url))

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server is not None else self.options.port

    @property
    def url(self) -> str:
        return "http://{}:{}/".format(self.options.netloc, self.port)

    def write(self, frame: SinkFrame) -> None:
        result, now = frame.result, time.monotonic()
        text = json.dumps(dict([("stream", result.stream)] + list(frame.record.items())), separators=(",", ":"))
        with self._cond:
            stream = self._streams[result.stream]
            stream.received += 1
            stream.last_index = result.index
            stream.overlay = frame.overlay
            stream.persons, stream.followed = len(result.persons), len(set(result.ids))
            stream.times.append((now, stream.info.stats.frames))
            self._event_seq += 1
            self._events.append((self._event_seq, "id: {}\ndata: {}\n\n".format(self._event_seq, text)))
            due = stream.watchers > 0 and now - stream.encoded_at >= 1.0 / self.options.fps
            if due:
                stream.encoded_at = now
            self._cond.notify_all()
        if due:
            jpeg = encode_jpeg(frame.overlay, self.options.width)
            with self._cond:
                stream.jpeg, stream.jpeg_frame = jpeg, stream.received
                stream.published += 1
                self._cond.notify_all()

    def end(self, stream: int, stats) -> List[str]:
        with self._cond:
            self._streams[stream].ended = True
            self._cond.notify_all()
        return []

    def close(self) -> List[str]:
        self.shut()
        return []

    def discard(self) -> None:
        self.shut()

    # -- what the connections' threads ask ----------------------------------------------------------------------

    def route(self, path: str) -> Tuple[Optional[str], Optional[int]]:
        """(handler name, stream index) of a path; (None, None) for one that names nothing here."""
        fixed = {"/": "page", "/index.html": "page", "/events": "events", "/stats": "stats", "/healthz": "healthz"}
        if path in fixed:
            return fixed[path], None
        match = _STREAM_PATH.match(path)
        if match:
            route, number = ("mjpeg", match.group(2)) if match.group(2) else ("snapshot", match.group(3))
            if int(number) < len(self._streams):
                return route, int(number)
        return None, None

    def enter(self, client: Client) -> bool:
        with self._cond:
            if not Site.enter(self, client):
                return False
            if client.kind == "mjpeg":
                self._streams[client.stream].watchers += 1
            return True

    def leave(self, client: Client) -> None:
        with self._cond:
            Site.leave(self, client)
            if client.kind == "mjpeg":
                self._streams[client.stream].watchers -= 1

    def newest_jpeg(self, index: int, after: Optional[int]) -> Tuple[Optional[bytes], int]:
        """Stream ``index``'s newest JPEG and its number, waiting for one newer than number ``after`` (the last a
        client sent; None: it has sent none, and gets the newest overlay now, encoded for it if the view's JPEG is
        older); (None, after) once the stream or the run ended."""
        with self._cond:
            stream = self._streams[index]
            if after is None and stream.overlay is not None and stream.jpeg_frame < stream.received:
                overlay, number = stream.overlay, stream.published
            else:
                after = 0 if after is None else after
                while stream.published <= after and not (stream.ended or self._closed):
                    self._cond.wait()
                if stream.published <= after:
                    return None, after
                return stream.jpeg, stream.published
        return encode_jpeg(overlay, self.options.width), number

    def snapshot(self, index: int) -> Optional[bytes]:
        """Stream ``index``'s newest overlay as JPEG (None before its first frame)."""
        with self._cond:
            stream = self._streams[index]
            if stream.jpeg is not None and stream.jpeg_frame == stream.received:
                return stream.jpeg
            overlay = stream.overlay
        return encode_jpeg(overlay, self.options.width) if overlay is not None else None

    def records_after(self, seq: int) -> Tuple[List[Tuple[int, str]], bool]:
        """The records published after ``seq`` (waiting for one), and whether the events ended (every stream ended
        or the run closed) once these are sent."""
        with self._cond:
            while self._event_seq <= seq and not self._finished():
                self._cond.wait()
            return [event for event in self._events if event[0] > seq], self._finished()

    def event_seq(self) -> int:
        with self._cond:
            return self._event_seq

    def _finished(self) -> bool:
        return self._closed or all(s.ended for s in self._streams)

    def stats(self) -> dict:
        """The figures the page shows (/stats)."""
        now = time.monotonic()
        with self._cond:
            clients = [c.to_dict() for c in self._clients]
            streams = []
            for index, stream in enumerate(self._streams):
                stats = stream.info.stats
                watching = [c for c in clients if c["stream"] == index and c["kind"] == "mjpeg"]
                missed = stream.last_index + 1 - stream.received  # source positions the view never got
                streams.append({
                    "stream": index, "source": stream.info.source, "live": stream.info.live,
                    "state": "ended" if stream.ended else "live" if stream.received else "starting",
                    "frames": stats.frames, "fps": round(_fps(stream, stats, now), 2),
                    "persons": stream.persons, "followed": stream.followed,
                    "dropped": {"stream": stats.dropped, "view": max(0, missed - stats.dropped)},
                    "clients": len(watching), "skipped_by_clients": sum(c["skipped"] for c in watching)})
            return {"model": self._run.model if self._run is not None else "", "streams": streams,
                    "clients": clients, "max_clients": self.options.clients, "bad_requests": self._bad_requests,
                    "server_error": self._accept_error,
                    "elapsed_s": round(self._run.elapsed(), 3) if self._run is not None else 0.0,
                    "serve_fps": self.options.fps, "serve_width": self.options.width}


def _fps(stream: _Stream, stats, now: float) -> float:
    """Frames per second over the last ``FPS_WINDOW`` frames; a stream that ended: over its whole run."""
    if stream.ended:
        return stats.fps
    if len(stream.times) < 2:
        return 0.0
    (t0, f0), (t1, f1) = stream.times[0], stream.times[-1]
    return (f1 - f0) / (t1 - t0) if t1 > t0 else 0.0


def encode_jpeg(overlay, width: int) -> bytes:
    """``overlay`` [H, W, 3] BGR -> JPEG bytes, scaled down to ``width`` pixels when wider."""
    import cv2

    height, frame_width = overlay.shape[:2]
    if frame_width > width:
        overlay = cv2.resize(overlay, (width, max(1, int(round(height * width / float(frame_width))))),
                             interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", overlay, [int(cv2.IMWRITE_JPEG_QUALITY), JPEG_QUALITY])
    if not ok:
        raise GoatPoseError("--serve: OpenCV could not encode a {}x{} overlay as JPEG".format(frame_width, height))
    return data.tobytes()


_STREAM_PATH = re.compile(r"^/(stream/([0-9]{1,6})\.mjpg|snapshot/([0-9]{1,6})\.jpg)\Z")
