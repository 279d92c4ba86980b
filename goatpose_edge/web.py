"""The HTTP server the browser pages share: the live view of a run (``video.live``) and the fleet dashboard
(``mqtt.dashboard``). Standard library only (``HTTPServer`` with ``ThreadingMixIn``: a daemon thread per connection,
Python 3.6 on the TX2).

A ``Site`` is what one server serves: it names its routes (``route``), its page and its ``Handler`` (a method
``_ROUTE(site, client)`` per route), and gets from here what both pages need:

- **access**: 127.0.0.1 unless told otherwise; any other address needs a token (``check_access``), checked on every
  request (``?token=`` or ``Authorization: Bearer``; 401 and no body but the reason otherwise);
- **a client limit**: at most ``clients`` requests served at once (503 beyond), each a ``Client`` whose figures its
  own thread writes;
- **bad input**: a request that does not arrive within ``REQUEST_TIMEOUT_S``, or a streaming client that takes
  nothing for ``STALL_TIMEOUT_S``, is disconnected; a garbled request gets a 400 and is counted; a port in use or a
  host that is not an address of this machine is one line (``GoatPoseError``) when the server binds;
- **streaming** (``Handler._streaming``): a small send buffer, so that a slow client gets fresh data rather than
  megabytes of old data behind it;
- **the end** (``Site.shut``): every response ended, the server stopped, its port free again.
"""

import errno
import hmac
import ipaddress
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from goatpose_edge.errors import GoatPoseError

#: the environment variable that holds the token when --serve-token is not given
TOKEN_ENV = "GOATPOSE_SERVE_TOKEN"
#: seconds a client has to send its request line and headers
REQUEST_TIMEOUT_S = 10.0
#: seconds a streaming client may take nothing before it is disconnected (its slot is freed)
STALL_TIMEOUT_S = 60.0
#: seconds the connections get to finish their responses once the site closes, before their sockets are shut
SHUT_GRACE_S = 1.0
#: bytes a streaming client's socket buffers on the server's side (the kernel may double it)
SEND_BUFFER = 256 * 1024


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


def check_access(host: str, port: int, token: Optional[str], clients: int) -> None:
    """``ValueError`` naming the option for an address, token or client limit that cannot work."""
    if not 0 <= port <= 65535:
        raise ValueError("--serve: port {} is not in 0..65535".format(port))
    if clients < 1:
        raise ValueError("--serve-clients {}: at least 1".format(clients))
    if token is not None:
        check_token(token)
    if token is None and not is_loopback(host):
        raise ValueError("--serve {}: an address other than this machine's loopback needs a token (--serve-token "
                         "or {}), or listen on 127.0.0.1 and reach it through `ssh -L`".format(host, TOKEN_ENV))


def netloc(host: str) -> str:
    """``host`` as it goes into a URL (an IPv6 address in brackets)."""
    return "[{}]".format(host) if ":" in host else host


class Client:
    """A connection's figures; its own thread writes them."""

    def __init__(self, kind: str, key: Optional[int]):
        self.kind, self.stream = kind, key  # the route, and what it serves (a stream index, or None)
        self.sent = 0  # frames, records or updates sent
        self.skipped = 0  # replaced by newer ones before this client could take them

    def to_dict(self) -> dict:
        return {"kind": self.kind, "stream": self.stream, "sent": self.sent, "skipped": self.skipped}


class Site:
    """What one server serves (see the module docstring). A subclass sets ``handler``, ``page`` (bytes),
    ``not_found`` and ``busy`` (the bodies of a 404 and a 503), and implements ``route``; it may extend ``enter`` and
    ``leave`` (under ``_cond``, a reentrant condition). Its threads wait on ``_cond``, which ``shut`` notifies after
    setting ``_closed``."""

    handler = None  # type: type  # a Handler subclass with a method _ROUTE(site, client) per route
    not_found = b"not found\n"
    busy = b"too many clients (--serve-clients)\n"

    def __init__(self):
        self.page = b""
        self.server = None  # type: Optional[_Server]
        self._thread = None  # type: Optional[threading.Thread]
        self._cond = threading.Condition()
        self._closed = False
        self._token = None  # type: Optional[str]
        self._max_clients = 1
        self._clients = []  # type: List[Client]  # the connections being served (their threads add and remove)
        self._connections = set()  # open sockets, shut at close (their threads add and remove)
        self._bad_requests = 0  # counted by the connections' threads, under the condition
        self._accept_error = ""  # set by the server's thread when accepting failed for good

    def route(self, path: str) -> Tuple[Optional[str], Optional[int]]:
        """(route name, its argument) of a URL path; (None, None) for one that names nothing here."""
        raise NotImplementedError

    # -- the owner's thread -------------------------------------------------------------------------------------

    def listen(self, host: str, port: int, token: Optional[str], clients: int) -> None:
        """Bind (``GoatPoseError`` in one line if that cannot work) and serve from a thread of its own."""
        self._token, self._max_clients = token, clients
        self.server = _bind(host, port, self)
        self._thread = threading.Thread(target=self.server.serve, name="goatpose-serve", daemon=True)
        self._thread.start()

    @property
    def port(self) -> Optional[int]:
        return self.server.server_address[1] if self.server is not None else None

    def shut(self) -> None:
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

    def enter(self, client: Client) -> bool:
        """Take a client slot; False when ``clients`` are being served already (or the site closed)."""
        with self._cond:
            if self._closed or len(self._clients) >= self._max_clients:
                return False
            self._clients.append(client)
            return True

    def leave(self, client: Client) -> None:
        with self._cond:
            self._clients.remove(client)

    def connected(self, connection, opened: bool) -> None:
        with self._cond:
            (self._connections.add if opened else self._connections.discard)(connection)

    def stopped_accepting(self, exc: OSError) -> None:
        with self._cond:
            self._accept_error = "no new connections: {}".format(exc.strerror or exc)

    def bad_request(self) -> None:
        with self._cond:
            self._bad_requests += 1

    def authorised(self, handler: BaseHTTPRequestHandler, query: dict) -> bool:
        token = self._token
        if token is None:
            return True
        given = (query.get("token") or [""])[0]
        header = handler.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            given = header[7:].strip()
        return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True  # a client never holds the process
    block_on_close = False  # Python >= 3.7: server_close does not wait for them (``Site.shut`` does)
    allow_reuse_address = True  # the port is free again at once after close

    def __init__(self, address, family, site: Site):
        self.address_family = family
        self.site = site
        self._handlers = []  # type: List[threading.Thread]
        self._lock = threading.Lock()
        self._stopping = False
        HTTPServer.__init__(self, address, site.handler)

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
                self.site.stopped_accepting(exc)  # out of file descriptors: named in the figures, never a busy loop
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
        """ThreadingMixIn's, with the thread kept (before it starts) so that ``Site.shut`` can join it."""
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="goatpose-serve-client", daemon=True)
        with self._lock:
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def handle_error(self, request, client_address):
        """A client that went away mid-response, or a request that broke a handler: counted, never printed over the
        command's output."""
        self.site.bad_request()


def _bind(host: str, port: int, site: Site) -> _Server:
    where = "--serve {}:{}".format(netloc(host), port)
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise GoatPoseError("{}: {} is not a name or address this machine knows ({}): give one of its addresses, "
                            "e.g. 127.0.0.1 or 0.0.0.0".format(where, host, exc.strerror)) from None
    family, _, _, _, address = infos[0]
    try:
        return _Server(address[:2], family, site)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is in use (another goatpose serving there?): choose another port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "{} is not an address of this machine (`ip addr` lists them; 0.0.0.0 listens on all)".format(host)
        elif exc.errno == errno.EACCES:
            reason = "not allowed to listen there (ports below 1024 need root): choose a port above 1024"
        else:
            reason = exc.strerror or str(exc)
        raise GoatPoseError("{}: {}".format(where, reason)) from None


class Handler(BaseHTTPRequestHandler):
    """One connection: the token, the route, a client slot, then the route's method ``_ROUTE(site, client)``."""

    server_version = "goatpose"
    default_request_version = "HTTP/1.0"  # a garbled request line gets a status line too (HTTP/0.9 has none)
    timeout = REQUEST_TIMEOUT_S  # for the request; a streaming response then allows STALL_TIMEOUT_S per write

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.server.site.connected(self.connection, True)

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            self.server.site.connected(self.connection, False)

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature; a terminal is no web log
        pass

    def log_error(self, format, *args):  # noqa: A002 - a malformed or timed-out request (400, 408, 414, 431)
        self.server.site.bad_request()

    def do_GET(self):  # noqa: N802 - the stdlib's name
        site = self.server.site
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not site.authorised(self, query):
            self._reply(401, b"a token is required: ?token=... or Authorization: Bearer ...\n", "text/plain",
                        [("WWW-Authenticate", 'Bearer realm="goatpose"')])
            return
        route, key = site.route(url.path)
        if route is None:
            self._reply(404, site.not_found, "text/plain")
            return
        client = Client(route, key)
        if not site.enter(client):
            self._reply(503, site.busy, "text/plain", [("Retry-After", "5")])
            return
        try:
            getattr(self, "_" + route)(site, client)
        except (OSError, ValueError):  # the client went away (a broken pipe, a reset, a stalled client timed out)
            self.close_connection = True
        finally:
            site.leave(client)

    def _reply(self, code: int, body: bytes, ctype: str, headers=()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _page(self, site: Site, client: Client) -> None:
        self._reply(200, site.page, "text/html; charset=utf-8")

    def _healthz(self, site: Site, client: Client) -> None:
        self._reply(200, b"ok\n", "text/plain")

    def _streaming(self, ctype: str) -> None:
        """The headers of a response that streams until the site ends it."""
        self.close_connection = True
        self.connection.settimeout(STALL_TIMEOUT_S)
        # a small send buffer: a slow client gets fresh data rather than megabytes of old data behind it
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
