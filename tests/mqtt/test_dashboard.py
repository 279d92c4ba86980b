"""``goatpose dashboard`` (mqtt/dashboard.py) against a real Mosquitto on loopback: its routes, token, state of a
fleet of 24 simulated devices published with paho, bounded memory whatever the fleet sends, coalesced updates to a
slow page, malformed messages, one-line refusals; then in Debian's headless Chromium (Selenium, the live view's
setup) with three `goatpose video --publish` processes on a synthetic scene: three tiles whose skeletons are where the
scene's truth says, in their track colours, and a device killed with kill -9 turning offline within its keepalive.

The server tests run under Python 3.6 with paho-mqtt 1.6.1 too (make test-py36); the browser tests need chromium,
chromium-driver (Debian packages; make test installs them as root) and selenium, and skip in one line without them."""

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

from goatpose_edge.cli import main
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.mqtt.client import TlsFiles, new_client, parse_broker_url
from goatpose_edge.mqtt.dashboard import FPS_WINDOW, Dashboard, DashboardOptions
from goatpose_edge.web import TOKEN_ENV
from tests.mqtt.broker import MISSING, MOSQUITTO, Mosquitto, free_port
from tests.video.test_live_view import _skeleton_hits, browser  # noqa: F401 - the live view's Chromium fixture

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason=MISSING)

TOKEN = "fleet-token"
PREFIX = "site"
#: the COCO skeleton's first limbs, enough for the page (the meta carries the whole list)
LIMBS = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6]]


@pytest.fixture
def broker(tmp_path):
    mosquitto = Mosquitto(str(tmp_path / "broker")).start()
    yield mosquitto
    mosquitto.stop()


@contextlib.contextmanager
def _dashboard(broker, **options):
    dashboard = Dashboard(parse_broker_url(broker.url + "/" + PREFIX), DashboardOptions(port=0, **options))
    dashboard.open()
    try:
        yield dashboard
    finally:
        dashboard.close()


def _get(port, path, headers=None):
    """(status, headers, body) of a GET on the dashboard at ``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _state(dashboard):
    status, _, body = _get(dashboard.port, "/state")
    assert status == 200
    return json.loads(body.decode("utf-8"))


def _wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():  # a test waiting on another process (the broker) to deliver
        if time.monotonic() > deadline:
            raise AssertionError("not within {} s".format(timeout))
        time.sleep(0.02)


def _frame(device, stream, seq, persons=1, run="run-1", size=(320, 240)):
    """A frame message as ``goatpose video --publish`` sends it: person n at x = 40 + 60 n, its id n."""
    people = [{"box": [30.0 + 60 * n, 40.0, 40.0, 120.0], "score": 0.9, "box_score": 1.0, "id": n,
               "keypoints": [[40.0 + 60 * n + k, 50.0 + 6 * k, 0.9] for k in range(17)]} for n in range(persons)]
    return json.dumps({"frame": seq, "time": seq / 25.0, "persons": people, "device": device, "stream": stream,
                       "run": run, "seq": seq, "captured": "2030-01-01T00:00:{:06.3f}Z".format(seq / 25.0),
                       "size": list(size), "model": "dotpose"})


class _Fleet:
    """Simulated devices publishing with paho directly: per device a retained status and per stream a retained
    meta, then frames."""

    def __init__(self, broker):
        self.url = parse_broker_url(broker.url + "/" + PREFIX)
        self.connected = threading.Event()
        self.client = new_client("test-fleet-{}".format(os.getpid()), self.url, TlsFiles(),
                                 on_connect=lambda rc: self.connected.set())
        self.client.connect(self.url.host, self.url.port)
        self.client.loop_start()
        assert self.connected.wait(10)

    def publish(self, topic, payload, retain=False):
        return self.client.publish("{}/v1/{}".format(PREFIX, topic), payload, qos=1, retain=retain)

    def device(self, device, streams, frames=3, persons=1):
        self.publish(device + "/status", json.dumps({"state": "online", "device": device, "run": "run-1",
                                                     "streams": list(range(streams))}), retain=True)
        for stream in range(streams):
            self.publish("{}/{}/meta".format(device, stream), json.dumps(
                {"device": device, "stream": stream, "source": "file walkers.avi", "model": "dotpose",
                 "skeleton": LIMBS}), retain=True)
            for seq in range(frames):
                info = self.publish("{}/{}/frame".format(device, stream), _frame(device, stream, seq, persons))
        return info

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fleet(broker):
    devices = _Fleet(broker)
    yield devices
    devices.close()


# -- the server, with real HTTP clients -------------------------------------------------------------------------------

def test_routes_serve_the_page_state_and_health(broker):
    with _dashboard(broker) as dashboard:
        status, headers, page = _get(dashboard.port, "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"goatpose dashboard" in page
        assert b"http://" not in page and b"https://" not in page  # no CDN: works offline
        assert _get(dashboard.port, "/healthz")[::2] == (200, b"ok\n")
        state = _state(dashboard)
        assert state["connected"] and state["tiles"] == [] and state["broker"] == broker.url + "/" + PREFIX
        assert [_get(dashboard.port, path)[0] for path in ("/stream/0.mjpg", "/nothing", "/state/x")] == [404] * 3


def test_the_page_draws_in_the_overlays_track_colours():
    """The page's palette is the device overlay's (draw.PALETTE, BGR) as RGB: a track has one colour everywhere."""
    from goatpose_edge.draw import PALETTE
    from goatpose_edge.mqtt.dashboard import PAGE

    with open(PAGE) as page:
        listed = re.search(r"var PALETTE = \[([^\]]*)\]", page.read()).group(1)
    assert re.findall(r'"#([0-9a-f]{6})"', listed) == ["{:02x}{:02x}{:02x}".format(r, g, b) for b, g, r in PALETTE]


@pytest.mark.parametrize("path", ["/", "/events", "/state", "/healthz"])
@pytest.mark.parametrize("given", ["none", "wrong query", "wrong bearer", "right in another parameter"])
def test_without_the_token_401_and_no_body_but_the_reason(broker, fleet, path, given):
    query, headers = {"none": ("", {}), "wrong query": ("?token=guess", {}),
                      "wrong bearer": ("", {"Authorization": "Bearer guess"}),
                      "right in another parameter": ("?tok=" + TOKEN, {})}[given]
    with _dashboard(broker, token=TOKEN) as dashboard:
        fleet.device("gate-1", 1).wait_for_publish()
        _wait_for(lambda: dashboard.state()["tiles"])
        status, response_headers, body = _get(dashboard.port, path + query, headers)
    assert status == 401 and response_headers["Content-Type"] == "text/plain"
    assert body == b"a token is required: ?token=... or Authorization: Bearer ...\n"


@pytest.mark.parametrize("how", ["query", "bearer"])
def test_the_token_opens_every_route(broker, how):
    with _dashboard(broker, token=TOKEN) as dashboard:
        query, headers = ("?token=" + TOKEN, {}) if how == "query" else ("", {"Authorization": "Bearer " + TOKEN})
        assert [_get(dashboard.port, p + query, headers)[0] for p in ("/", "/state", "/healthz")] == [200] * 3


def test_a_fleet_of_24_devices_gets_a_tile_per_device_and_stream(broker, fleet):
    with _dashboard(broker) as dashboard:
        for number in range(24):
            last = fleet.device("dev-{:02d}".format(number), streams=2 if number % 3 == 0 else 1, frames=4,
                                persons=1 + number % 3)
        last.wait_for_publish()
        expected = ["dev-{:02d}/{}".format(n, s) for n in range(24) for s in range(2 if n % 3 == 0 else 1)]
        _wait_for(lambda: [t["frames"] for t in dashboard.state()["tiles"]] == [4] * len(expected))
        state = _state(dashboard)
        fleet.publish("dev-05/status", json.dumps({"state": "offline", "device": "dev-05"}), retain=True)
        _wait_for(lambda: [t["state"] for t in dashboard.state()["tiles"] if t["device"] == "dev-05"] == ["offline"])
    assert [t["id"] for t in state["tiles"]] == expected and state["devices"] == 24 and len(expected) == 32
    assert {t["state"] for t in state["tiles"]} == {"online"} and state["skipped"] == {
        "malformed": 0, "foreign": 0, "over_limit": 0}
    tile = state["tiles"][expected.index("dev-02/0")]
    assert tile["persons"] == 3 and tile["frame"]["frame"] == 3 and tile["frame"]["size"] == [320, 240]
    assert [p["id"] for p in tile["frame"]["persons"]] == [0, 1, 2] and tile["skeleton"] == LIMBS
    assert tile["frame"]["persons"][2]["keypoints"][4] == [164.0, 74.0, 0.9]  # x = 40 + 60 * 2 + 4, y = 50 + 6 * 4
    assert tile["fps"] > 0 and 0 <= tile["age_s"] < 15 and tile["source"] == "file walkers.avi"


def test_a_broker_restart_is_shown_and_the_dashboard_subscribes_again(broker):
    with _dashboard(broker) as dashboard:
        first = _Fleet(broker)
        first.device("gate-1", 1, frames=2).wait_for_publish()
        _wait_for(lambda: [t["frames"] for t in dashboard.state()["tiles"]] == [2])
        first.close()
        broker.kill(signal.SIGKILL)
        _wait_for(lambda: not _state(dashboard)["connected"])
        broker.restart()
        _wait_for(lambda: _state(dashboard)["connected"], timeout=40)  # paho's backoff: 1, 2, 4 ... s
        again = _Fleet(broker)
        again.publish("gate-1/0/frame", _frame("gate-1", 0, 2)).wait_for_publish()
        _wait_for(lambda: [t["frames"] for t in dashboard.state()["tiles"]] == [3])
        again.close()


def test_fps_counts_the_frames_delivered_lost_ones_included_per_run(broker):
    topic = "{}/v1/gate-1/0/frame".format(PREFIX)
    with _dashboard(broker) as dashboard:
        for n, seq in enumerate([0, 1, 2, 4, 5]):  # 0.1 s apart, seq 3 lost on the way: 5 frames in 0.4 s
            dashboard.receive(topic, _frame("gate-1", 0, seq).encode("utf-8"), 100.0 + 0.1 * n)
        delivered = dashboard.state(now=100.5)["tiles"][0]
        dashboard.receive(topic, _frame("gate-1", 0, 0, run="run-2").encode("utf-8"), 101.0)  # the device restarted
        restarted = dashboard.state(now=101.5)["tiles"][0]
    assert (delivered["fps"], delivered["frames"], delivered["age_s"]) == (12.5, 5, 0.1)
    assert (restarted["fps"], restarted["frames"], restarted["age_s"]) == (0.0, 6, 0.5)


def test_memory_stays_bounded_whatever_the_fleet_sends(broker):
    """The newest frame per tile, at most ``max_tiles`` tiles: once every tile's fps window is full, 40 more frames
    from each of 80 devices add nothing; the devices past the limit are counted."""
    with _dashboard(broker, max_tiles=64) as dashboard:
        messages = [("{}/v1/dev-{:03d}/0/frame".format(PREFIX, device), _frame("dev-{:03d}".format(device), 0, 0,
                                                                                persons=3).encode("utf-8"))
                    for device in range(80)]

        def rounds(first, count):
            for seq in range(first, first + count):
                for topic, payload in messages:
                    dashboard.receive(topic, payload.replace(b'"seq": 0', '"seq": {}'.format(seq).encode()),
                                      time.monotonic())

        tracemalloc.start()  # from the start: what a tile holds is then traced at every round's end
        try:
            rounds(0, FPS_WINDOW)
            base = tracemalloc.get_traced_memory()[0]
            rounds(FPS_WINDOW, 40)
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        state = dashboard.state()
    assert len(state["tiles"]) == 64 and state["devices"] == 64 and {t["frames"] for t in state["tiles"]} == {
        FPS_WINDOW + 40}
    assert state["skipped"]["over_limit"] == 16 * (FPS_WINDOW + 40)
    assert grown < 50e3, grown  # were the 2 560 frames of ~2 kB kept: 5 MB


def test_malformed_foreign_and_oversized_messages_are_skipped_and_counted(broker, fleet):
    with _dashboard(broker) as dashboard:
        fleet.device("gate-1", 1, frames=1)
        good = json.loads(_frame("gate-1", 0, 1))
        nan = dict(good, persons=[dict(good["persons"][0], keypoints=[[float("nan"), 1.0, 0.9]] * 17)])
        for topic, payload in [("gate-1/0/frame", b"\xff\xfe not json"), ("gate-1/0/frame", b"[1, 2]"),
                               ("gate-1/0/frame", json.dumps(dict(good, size="big"))),
                               ("gate-1/0/frame", json.dumps(dict(good, persons=[{"id": 1}]))),
                               ("gate-1/0/frame", json.dumps(nan)), ("gate-1/status", b'{"streams": [0]}'),
                               ("gate-1/0/frame", b" " * (300 * 1024) + _frame("gate-1", 0, 1).encode()),
                               ("gate-1/0/nothing", b"{}"), ("gate-1/a/b/c", b"{}")]:
            fleet.publish(topic, payload)
        fleet.client.publish("elsewhere/v1/gate-2/status", b'{"state": "online"}', qos=1)
        fleet.publish("gate-1/0/frame", _frame("gate-1", 0, 2)).wait_for_publish()
        _wait_for(lambda: [t["frames"] for t in dashboard.state()["tiles"]] == [2])
        state = _state(dashboard)
    assert state["skipped"] == {"malformed": 7, "foreign": 2, "over_limit": 0}  # elsewhere/: not subscribed
    assert [t["frame"]["frame"] for t in state["tiles"]] == [2] and state["tiles"][0]["state"] == "online"


def _open_events(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/events")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    return connection, response


def _next_event(response):
    """The next update of an /events response (None at its end)."""
    while True:
        line = response.fp.readline()
        if not line or line.startswith(b"event: end"):
            return None
        if line.startswith(b"data: "):
            return json.loads(line[len(b"data: "):].decode("utf-8"))


def test_events_send_every_tile_then_the_newest_changes_a_few_times_a_second(broker, fleet):
    with _dashboard(broker, updates_per_s=4.0) as dashboard:
        fleet.device("gate-1", 2, frames=1).wait_for_publish()
        fleet.device("gate-2", 1, frames=1).wait_for_publish()
        # every tile's frame in (a status makes the tiles, its meta and frame follow: one arriving after the first
        # event would be a change in the updates below)
        _wait_for(lambda: [t["frames"] for t in dashboard.state()["tiles"]] == [1, 1, 1])
        connection, response = _open_events(dashboard.port)
        first = _next_event(response)
        assert [t["id"] for t in first["tiles"]] == ["gate-1/0", "gate-1/1", "gate-2/0"]  # everything once
        started = time.monotonic()
        for seq in range(1, 201):  # 200 frames of one tile as fast as the broker takes them
            info = fleet.publish("gate-1/1/frame", _frame("gate-1", 1, seq))
        info.wait_for_publish()
        updates = []
        while not updates or updates[-1]["tiles"][0]["frame"]["frame"] != 200:
            updates.append(_next_event(response))
        elapsed = time.monotonic() - started
        dashboard.close()
        assert _next_event(response) is None  # the end ends the stream
        connection.close()
    assert all([t["id"] for t in update["tiles"]] == ["gate-1/1"] for update in updates)  # only what changed
    assert len(updates) <= 4 * elapsed + 1, (len(updates), elapsed)  # coalesced: 200 frames, a few updates


def test_stalled_pages_never_slow_the_messages_nor_hold_more_than_one_update(broker):
    with _dashboard(broker, updates_per_s=1000.0) as dashboard:
        stalled = []
        for _ in range(3):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", dashboard.port))
            client.sendall(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            stalled.append(client)
        _wait_for(lambda: len(dashboard.state()["clients"]) == 3)
        payloads = [_frame("dev-{}".format(n % 20), 0, n, persons=5).encode("utf-8") for n in range(4000)]
        durations = []
        for payload in payloads:
            start = time.perf_counter()
            dashboard.receive("{}/v1/{}/0/frame".format(PREFIX, json.loads(payload)["device"]), payload,
                              time.monotonic())
            durations.append(time.perf_counter() - start)
        clients = dashboard.state()["clients"]
        for client in stalled:
            client.close()
    assert sorted(durations)[2000] < 0.005 and max(durations) < 1.0  # never a wait for a page
    assert all(c["kind"] == "events" and c["sent"] < 200 for c in clients)  # stuck on one write, no queue behind it


def _busy_port():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    return holder


@pytest.mark.parametrize("case, expected", [
    ("port in use", "the port is in use"),
    ("not this machine", "192.0.2.1 is not an address of this machine"),
    ("unreachable broker", "cannot reach the broker mqtt://127.0.0.1:"),
])
def test_what_cannot_work_fails_open_in_one_line_and_frees_the_port(broker, case, expected):
    holder = _busy_port()
    url = broker.url if case != "unreachable broker" else "mqtt://127.0.0.1:{}".format(free_port())
    options = {"port in use": DashboardOptions(port=holder.getsockname()[1]),
               "not this machine": DashboardOptions("192.0.2.1", 0, TOKEN),
               "unreachable broker": DashboardOptions(port=0)}[case]
    dashboard = Dashboard(parse_broker_url(url), options)
    try:
        with pytest.raises(GoatPoseError) as error:
            dashboard.open()
    finally:
        holder.close()
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert dashboard.server is None and not [t for t in threading.enumerate() if t.name.startswith("goatpose-serve")]


def test_garbage_gets_400_and_the_dashboard_goes_on(broker):
    with _dashboard(broker) as dashboard:
        answers = []
        for garbage in (b"\x00\xff\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/9x\r\n\r\n"):
            client = socket.create_connection(("127.0.0.1", dashboard.port), timeout=10)
            client.sendall(garbage)
            answers.append(client.recv(64).split(b"\r\n")[0].split(b" ")[1])
            client.close()
        assert answers == [b"400", b"400"]
        assert _state(dashboard)["bad_requests"] >= 2


@pytest.mark.parametrize("argv, environ, expected", [
    ([], {}, "--serve [HOST:]PORT is required"),
    (["--serve", "localhost:http"], {}, "--serve 'localhost:http': expected [HOST:]PORT"),
    (["--serve", "8080", "--serve-token", "ab\ncd"], {}, "--serve-token: the token holds a control character"),
    (["--serve", "8080"], {TOKEN_ENV: "ab\rcd"}, TOKEN_ENV + ": the token holds a control character"),
    (["--serve", "0.0.0.0:8080"], {}, "needs a token (--serve-token or " + TOKEN_ENV),
    (["--serve", "8080", "--mqtt-ca", "ca.pem"], {}, "--mqtt-ca given with mqtt://"),
])
def test_command_line_mistakes_exit_2(argv, environ, expected, capsys, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["dashboard", "mqtt://127.0.0.1"] + argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_a_bad_broker_url_exits_2(capsys):
    assert main(["dashboard", "http://broker", "--serve", "8080"]) == 2
    assert "expected mqtt://[USER@]HOST[:PORT][/PREFIX]" in capsys.readouterr().err


@contextlib.contextmanager
def _command(url, *flags):
    """``goatpose dashboard URL --serve 127.0.0.1:0 FLAGS`` running; yields its page's URL; SIGTERM ends it (exit 0,
    the port free again)."""
    process = subprocess.Popen([sys.executable, "-m", "goatpose_edge", "dashboard", url, "--serve", "127.0.0.1:0"] +
                               list(flags), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"dashboard: (http://\S+)", line)
        assert match, line + process.stderr.read()
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and stderr.strip() == "dashboard stopped", stderr
    with contextlib.closing(socket.socket()) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(match.group(1).rsplit(":", 1)[1].strip("/"))))


def test_the_command_serves_until_sigterm(broker, fleet):
    with _command(broker.url + "/" + PREFIX, "--serve-token", TOKEN) as url:
        fleet.device("gate-1", 1).wait_for_publish()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert _get(port, "/state")[0] == 401
        _wait_for(lambda: json.loads(_get(port, "/state?token=" + TOKEN)[2].decode("utf-8"))["tiles"])


# -- in a real browser: three devices running goatpose video --publish --------------------------------------------------

#: where each device's still figure stands (its pelvis, in frame pixels of the 320x240 scene)
PLACES = {"dev-1": (80.0, 130.0), "dev-2": (160.0, 130.0), "dev-3": (240.0, 130.0)}


@pytest.fixture(scope="module")
def still_scenes(tmp_path_factory):
    """The dot model and, per device, a scene of one figure standing still (its truth is the same in every frame,
    whichever the page shows) at its own place; the slow detector (figures:80, at most 12 fps) makes them last
    longer than the test."""
    from goatpose_edge.synthetic import FigurePath, SceneOptions, build_dot_pose_onnx, read_truth, write_scene

    folder = tmp_path_factory.mktemp("dashboard")
    scenes = {}
    for device, place in PLACES.items():
        video = str(folder / "{}.avi".format(device))
        write_scene(video, video + ".truth.jsonl", SceneOptions(width=320, height=240, frames=300, figures=[
            FigurePath(place, (0.0, 0.0), 120.0)]))
        scenes[device] = (video, read_truth(video + ".truth.jsonl")[0][0])
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), scenes


def _device(onnx, video, broker_url, device, folder):
    return subprocess.Popen([sys.executable, "-m", "goatpose_edge", "video", video, "--pose", onnx, "--detector",
                             "figures:80", "--no-progress", "--publish", broker_url, "--device-id", device,
                             "--mqtt-keepalive", "1", "--spool", os.path.join(folder, device)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)


def _text(driver, element_id):
    return driver.find_element("id", element_id).text


def test_three_devices_three_tiles_with_their_skeletons_and_a_killed_one_turns_offline(
        browser, broker, still_scenes, tmp_path):
    import cv2
    import numpy as np

    from goatpose_edge.artefact.contract import COCO_SKELETON
    from goatpose_edge.draw import PALETTE

    driver = browser
    driver.set_window_size(1100, 800)  # three tiles in a row: an element's screenshot is cut at the window's edge

    onnx, scenes = still_scenes
    url = broker.url + "/" + PREFIX
    devices = {d: _device(onnx, scenes[d][0], url, d, str(tmp_path)) for d in sorted(scenes)}
    try:
        with _command(url) as page:
            driver.get(page)
            for device in devices:  # each tile has drawn a few frames
                _wait_for(lambda: driver.execute_script(
                    "var e = document.getElementById(arguments[0]); return e ? Number(e.textContent) : 0",
                    "frames-{}/0".format(device)) > 3, timeout=60)
            tiles = driver.find_elements("css selector", ".tile")
            shots = {d: driver.find_element("id", "canvas-{}/0".format(d)).screenshot_as_png for d in devices}
            states = {d: _text(driver, "state-{}/0".format(d)) for d in devices}
            state = json.loads(_get(int(page.rsplit(":", 1)[1].strip("/")), "/state")[2].decode("utf-8"))
            ids = {t["device"]: {p["id"] for p in t["frame"]["persons"]} for t in state["tiles"]}
            assert devices["dev-2"].poll() is None  # still running: what turns it offline is its last will
            devices["dev-2"].kill()  # kill -9: no word from it, the broker sends its last will
            killed = time.monotonic()
            _wait_for(lambda: _text(driver, "state-dev-2/0") == "offline", timeout=10)
            offline_after = time.monotonic() - killed
            others = [_text(driver, "state-{}/0".format(d)) for d in ("dev-1", "dev-3")]
            _write_screenshot(driver, os.environ.get("GOATPOSE_DASHBOARD_SCREENSHOT"))  # the README's, dev-2 offline
    finally:
        for process in devices.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in devices.values():
            process.communicate(timeout=60)
    assert len(tiles) == 3 and states == {d: "online" for d in devices} and others == ["online", "online"]
    limbs = len(COCO_SKELETON)
    for device in sorted(devices):
        assert len(ids[device]) == 1, ids  # one figure, one track
        colour = PALETTE[next(iter(ids[device])) % len(PALETTE)]
        truth = scenes[device][1]
        shot = cv2.imdecode(np.frombuffer(shots[device], np.uint8), cv2.IMREAD_COLOR)
        assert shot.shape[1] == 320  # the canvas, the frame's 320 px wide
        assert _skeleton_hits(shots[device], truth, 320, colour=colour) >= limbs, device
        for other in sorted(set(devices) - {device}):  # nothing where the other devices' figures stand
            assert _skeleton_hits(shots[device], scenes[other][1], 320, colour=colour) == 0, (device, other)
    assert offline_after < 1.5 * 1 + 3.0, offline_after  # the last will: 1.5 x --mqtt-keepalive 1, and delivery


def _write_screenshot(driver, path):
    """The page cropped to its header and tiles, as the README shows it (written only when ``path`` is given)."""
    if not path:
        return
    import cv2
    import numpy as np

    tiles = driver.find_element("id", "tiles").rect
    page = cv2.imdecode(np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    right = min(page.shape[1], int(max(e.rect["x"] + e.rect["width"] for e in
                                       driver.find_elements("css selector", ".tile")) + 12))
    cv2.imwrite(path, page[:int(tiles["y"] + tiles["height"] + 12), :right], [cv2.IMWRITE_PNG_COMPRESSION, 9])
