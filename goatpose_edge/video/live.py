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

Safe by default: 127.0.0.1; any other address needs a token (``?token=`` or ``Authorization: Bearer``), checked on
every request (401, no image, otherwise); at most ``clients`` requests are served at once (503 beyond); a request
that does not arrive within ``REQUEST_TIMEOUT_S`` or a client that takes nothing for ``STALL_TIMEOUT_S`` is
disconnected; a garbage request gets a 400 and is counted. What cannot work (a port in use, a host that is not an
address of this machine, no stream) fails ``open``, before the first frame, in one line. ``close`` (the run ended)
ends every response, stops the server and frees the port.

Device side: standard library, numpy and OpenCV, Python 3.6.
"""

import errno
import hmac
import ipaddress
import json
import os
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import Callable, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video.sinks import RunInfo, Sink, SinkFrame

#: the environment variable that holds the token when --serve-token is not given
TOKEN_ENV = "GOATPOSE_SERVE_TOKEN"
#: frame records kept for /events clients (one that falls further behind skips the oldest, counted)
EVENTS_KEPT = 256
#: seconds a client has to send its request line and headers
REQUEST_TIMEOUT_S = 10.0
#: seconds a streaming client may take nothing before it is disconnected (its slot is freed)
STALL_TIMEOUT_S = 60.0
#: seconds the connections get to finish their responses once the run ended, before their sockets are shut
SHUT_GRACE_S = 1.0
#: bytes a streaming client's socket buffers on the server's side (the kernel may double it): a few frames
SEND_BUFFER = 256 * 1024
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
        if not 0 <= self.port <= 65535:
            raise ValueError("--serve: port {} is not in 0..65535".format(self.port))
        if self.width < 16:
            raise ValueError("--serve-width {}: at least 16 pixels".format(self.width))
        if not 0 < self.fps < float("inf"):
            raise ValueError("--serve-fps {}: a positive number".format(self.fps))
        if self.clients < 1:
            raise ValueError("--serve-clients {}: at least 1".format(self.clients))
        if self.token is not None:
            check_token(self.token)
        if self.token is None and not is_loopback(self.host):
            raise ValueError("--serve {}: an address other than this machine's loopback needs a token (--serve-token "
                             "or {}), or listen on 127.0.0.1 and reach it through `ssh -L`".format(self.host, TOKEN_ENV))
        return self

    @property
    def netloc(self) -> str:
        return "[{}]".format(self.host) if ":" in self.host else self.host


def parse_address(text: str, default_host: str = "127.0.0.1") -> Tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port): "8080", ":8080", "0.0.0.0:8080", "[::1]:8080"; ``ValueError`` otherwise."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host = ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("{!r}: put an IPv6 address in brackets, [::1]:8080".format(text))
    if not re.match(r"[0-9]{1,5}\Z", port) or int(port) > 65535:
        raise ValueError("{!r}: expected [HOST:]PORT with a port in 0..65535, e.g. 8080 or 0.0.0.0:8080".format(text))
    if any(c.isspace() or ord(c) < 32 or c in "/?#@" for c in host):
        raise ValueError("{!r}: the host must be an address or a name, e.g. 127.0.0.1".format(text))
    return host or default_host, int(port)


def check_token(token: str, option: str = "--serve-token") -> None:
    """A token goes into URLs and headers: refused when empty or holding a control character (a newline would split
    the header it travels in)."""
    if not token:
        raise ValueError("{}: the token is empty".format(option))
    bad = [c for c in token if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ValueError("{}: the token holds a control character ({!r}): use printable characters only".format(
            option, bad[0]))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost"; any other name counts as reachable from outside."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


class _Client:
    """A connection's figures; its own thread writes them."""

    def __init__(self, kind: str, stream: Optional[int]):
        self.kind, self.stream = kind, stream
        self.sent = 0  # frames (MJPEG) or records (events) sent
        self.skipped = 0  # frames or records replaced by newer ones before this client could take them

    def to_dict(self) -> dict:
        return {"kind": self.kind, "stream": self.stream, "sent": self.sent, "skipped": self.skipped}


class LiveView(Sink):
    """The live view of a run (see the module docstring). ``log`` gets the URL once the server listens."""

    name = "--serve"
    wants = "overlay"
    policy = "latest"

    def __init__(self, options: LiveOptions, log: Callable[[str], None] = lambda line: None):
        self.options, self.log = options, log
        self.server = None  # type: Optional[_Server]
        self._thread = None  # type: Optional[threading.Thread]
        self._cond = threading.Condition()
        self._streams = []  # type: List[_Stream]
        self._events = deque(maxlen=EVENTS_KEPT)  # (sequence number, SSE text) of the newest records
        self._event_seq = 0  # records published so far
        self._closed = False
        self._clients = []  # type: List[_Client]  # the connections being served (their threads add and remove)
        self._connections = set()  # open sockets, shut at close (their threads add and remove)
        self._bad_requests = 0  # counted by the connections' threads, under the condition
        self._accept_error = ""  # set by the server's thread when accepting failed for good
        self._run = None  # type: Optional[RunInfo]
        self.page = b""

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
        self.server = _bind(self.options, self)
        self._thread = threading.Thread(target=self.server.serve, name="goatpose-serve", daemon=True)
        self._thread.start()
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
        self._shut()
        return []

    def discard(self) -> None:
        self._shut()

    def _shut(self) -> None:
        """Every response ended, the server stopped and its port freed, the connections' threads joined: those
        still writing to a client after ``SHUT_GRACE_S`` (one that stopped reading) get their socket shut."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        server, self.server = self.server, None
        if server is None:
            return
        if self._thread is not None:
            server.stop(self._thread)
        server.server_close()
        deadline = time.monotonic() + SHUT_GRACE_S
        for thread in server.handlers():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed by its client meanwhile
                pass
        for thread in server.handlers():
            thread.join(SHUT_GRACE_S)

    # -- what the connections' threads ask ----------------------------------------------------------------------

    def stream_count(self) -> int:
        return len(self._streams)

    def enter(self, client: _Client) -> bool:
        """Take a client slot; False when ``clients`` are being served already (or the run ended)."""
        with self._cond:
            if self._closed or len(self._clients) >= self.options.clients:
                return False
            self._clients.append(client)
            if client.kind == "mjpeg":
                self._streams[client.stream].watchers += 1
            return True

    def leave(self, client: _Client) -> None:
        with self._cond:
            self._clients.remove(client)
            if client.kind == "mjpeg":
                self._streams[client.stream].watchers -= 1

    def connected(self, connection, opened: bool) -> None:
        with self._cond:
            (self._connections.add if opened else self._connections.discard)(connection)

    def stopped_accepting(self, exc: OSError) -> None:
        with self._cond:
            self._accept_error = "no new connections: {}".format(exc.strerror or exc)

    def bad_request(self) -> None:
        with self._cond:
            self._bad_requests += 1

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

    def authorised(self, handler: BaseHTTPRequestHandler, query: dict) -> bool:
        token = self.options.token
        if token is None:
            return True
        given = (query.get("token") or [""])[0]
        header = handler.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            given = header[7:].strip()
        return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


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


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True  # a client never holds the process
    block_on_close = False  # Python >= 3.7: server_close does not wait for them (``LiveView._shut`` does)
    allow_reuse_address = True  # the port is free again at once after close

    def __init__(self, address, family, view: LiveView):
        self.address_family = family
        self.view = view
        self._handlers = []  # type: List[threading.Thread]
        self._lock = threading.Lock()
        self._stopping = False
        HTTPServer.__init__(self, address, _Handler)

    def server_bind(self):
        """HTTPServer's, without its reverse DNS lookup of the host (seconds on a board with no DNS)."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def serve(self) -> None:
        """Accept connections until ``stop`` (a thread each, ``ThreadingMixIn``); blocks in ``accept``, no polling
        (``serve_forever`` wakes twice a second to look for a shutdown)."""
        while True:
            try:
                request, client_address = self.get_request()
            except OSError as exc:
                if self._stopping:  # the listening socket was shut by ``stop``
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):  # that client gave up
                    continue
                self.view.stopped_accepting(exc)  # out of file descriptors: named in /stats, never a busy loop
                return
            if self._stopping:
                self.shutdown_request(request)
                return
            try:
                self.process_request(request, client_address)
            except Exception:  # noqa: BLE001 - a thread that could not start: this client is refused, no other
                self.handle_error(request, client_address)
                self.shutdown_request(request)

    def stop(self, thread: threading.Thread) -> None:
        """End ``serve`` (running in ``thread``): shutting the listening socket wakes its ``accept`` (Linux)."""
        self._stopping = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        thread.join(SHUT_GRACE_S)  # a daemon thread: left behind, not waited for, where the platform does not wake it

    def handlers(self) -> List[threading.Thread]:
        with self._lock:
            return [t for t in self._handlers if t.is_alive()]

    def process_request(self, request, client_address):
        """ThreadingMixIn's, with the thread kept (before it starts) so that ``LiveView._shut`` can join it."""
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="goatpose-serve-client", daemon=True)
        with self._lock:
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def handle_error(self, request, client_address):
        """A client that went away mid-response, or a request that broke a handler: counted, never printed over the
        run's output."""
        self.view.bad_request()


def _bind(options: LiveOptions, view: LiveView) -> _Server:
    where = "--serve {}:{}".format(options.netloc, options.port)
    try:
        infos = socket.getaddrinfo(options.host, options.port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise GoatPoseError("{}: {} is not a name or address this machine knows ({}): give one of its addresses, "
                            "e.g. 127.0.0.1 or 0.0.0.0".format(where, options.host, exc.strerror)) from None
    family, _, _, _, address = infos[0]
    try:
        return _Server(address[:2], family, view)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another run serving there?): choose another port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "{} is not an address of this machine (`ip addr` lists them; 0.0.0.0 listens on all)".format(
                options.host)
        elif exc.errno == errno.EACCES:
            reason = "not allowed to listen there (ports below 1024 need root): choose a port above 1024"
        else:
            reason = exc.strerror or str(exc)
        raise GoatPoseError("{}: {}".format(where, reason)) from None


class _Handler(BaseHTTPRequestHandler):
    """One connection: the token, a client slot, then the route."""

    server_version = "goatpose-live"
    default_request_version = "HTTP/1.0"  # a garbled request line gets a status line too (HTTP/0.9 has none)
    timeout = REQUEST_TIMEOUT_S  # for the request; a streaming response then allows STALL_TIMEOUT_S per write

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.server.view.connected(self.connection, True)

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            self.server.view.connected(self.connection, False)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature; the run's terminal is no web log
        pass

    def log_error(self, format, *args):  # noqa: A002 - a malformed or timed-out request (400, 408, 414, 431)
        self.server.view.bad_request()

    def do_GET(self):  # noqa: N802 - the stdlib's name
        view = self.server.view
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not view.authorised(self, query):
            self._reply(401, b"a token is required: ?token=... or Authorization: Bearer ...\n", "text/plain",
                        [("WWW-Authenticate", 'Bearer realm="goatpose"')])
            return
        route, stream = _route(url.path, view.stream_count())
        if route is None:
            self._reply(404, b"not found: / /stream/N.mjpg /snapshot/N.jpg /events /stats /healthz\n", "text/plain")
            return
        client = _Client(route, stream)
        if not view.enter(client):
            self._reply(503, b"too many clients (--serve-clients), or the run ended\n", "text/plain",
                        [("Retry-After", "5")])
            return
        try:
            getattr(self, "_" + route)(view, client)
        except (OSError, ValueError):  # the client went away (a broken pipe, a reset, a stalled client timed out)
            self.close_connection = True
        finally:
            view.leave(client)

    def _reply(self, code: int, body: bytes, ctype: str, headers=()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _page(self, view: LiveView, client: _Client) -> None:
        self._reply(200, view.page, "text/html; charset=utf-8")

    def _healthz(self, view: LiveView, client: _Client) -> None:
        self._reply(200, b"ok\n", "text/plain")

    def _stats(self, view: LiveView, client: _Client) -> None:
        self._reply(200, json.dumps(view.stats()).encode("utf-8"), "application/json")

    def _snapshot(self, view: LiveView, client: _Client) -> None:
        jpeg = view.snapshot(client.stream)
        if jpeg is None:
            self._reply(404, "stream {} has no frame yet\n".format(client.stream).encode("utf-8"), "text/plain")
        else:
            self._reply(200, jpeg, "image/jpeg")

    def _streaming(self, ctype: str) -> None:
        self.close_connection = True
        self.connection.settimeout(STALL_TIMEOUT_S)
        # a small send buffer: a slow client gets a fresh frame rather than megabytes of old ones behind it
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def _mjpeg(self, view: LiveView, client: _Client) -> None:
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

    def _events(self, view: LiveView, client: _Client) -> None:
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


def _route(path: str, streams: int) -> Tuple[Optional[str], Optional[int]]:
    """(handler name, stream index) of a path; (None, None) for one that names nothing here."""
    fixed = {"/": "page", "/index.html": "page", "/events": "events", "/stats": "stats", "/healthz": "healthz"}
    if path in fixed:
        return fixed[path], None
    match = _STREAM_PATH.match(path)
    if match:
        route, number = ("mjpeg", match.group(2)) if match.group(2) else ("snapshot", match.group(3))
        if int(number) < streams:
            return route, int(number)
    return None, None


_STREAM_PATH = re.compile(r"^/(stream/([0-9]{1,6})\.mjpg|snapshot/([0-9]{1,6})\.jpg)\Z")
