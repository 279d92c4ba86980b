"""The live view (``goatpose video --serve``, video/live.py): its routes, token, client limit and bad input through a
real HTTP client on loopback; stalled clients that never slow the sink nor grow memory; the port free after the run;
then the page in Debian's headless Chromium (Selenium) on a synthetic scene served by the real command: the overlay's
skeletons where the scene's truth says, figures that update, a tile per stream, 401 and no image without the token.

The browser tests need chromium, chromium-driver (Debian packages; ``make test`` installs them as root) and selenium;
without them they are skipped in one line (Python 3.6, the device's interpreter, has no selenium: the server tests
run there)."""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

import cv2
import numpy as np
import pytest

from goatpose_edge.artefact.contract import COCO_SKELETON
from goatpose_edge.cli import main
from goatpose_edge.draw import PALETTE
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.synthetic import build_dot_pose_onnx, read_truth, single, walkers, write_scene
from goatpose_edge.video.app import VideoOptions, run_video
from goatpose_edge.video.engine import StreamOptions
from goatpose_edge.video.live import TOKEN_ENV, LiveOptions, LiveView
from goatpose_edge.video.results import FrameResult, StreamStats, read_jsonl
from goatpose_edge.video.sinks import RunInfo, Sink, SinkFrame, StreamInfo

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "s3cret-token"


# -- the server on its own: a run of numbered frames ----------------------------------------------------------------

class _Contract:
    name = "dotpose"


def _run_info(streams=1):
    stats = [StreamStats("synthetic {}".format(i)) for i in range(streams)]
    return RunInfo([StreamInfo(i, s.source, False, 25.0, None, s) for i, s in enumerate(stats)], _Contract(),
                   "figures", lambda: 1.0)


def _frame(run, stream, index, image):
    """Frame ``index`` of ``stream`` as the sink set hands it over (the engine's count advanced first, as the engine's
    caller does before the outputs get the frame)."""
    run.streams[stream].stats.frames += 1
    result = FrameResult(stream, index, index / 25.0, image, [], [])
    return SinkFrame(result, result.record(), image)


@contextlib.contextmanager
def _served(streams=1, **options):
    run = _run_info(streams)
    view = LiveView(LiveOptions(port=0, **options))
    view.open(run)
    try:
        yield view, run
    finally:
        view.close()


def _get(view, path, headers=None):
    """(status, headers, body) of a GET on ``view``."""
    connection = http.client.HTTPConnection("127.0.0.1", view.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _open_stream(view, path):
    connection = http.client.HTTPConnection("127.0.0.1", view.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    return connection, response


def _next_part(response):
    """The next JPEG of an MJPEG response (None at its end)."""
    length = None
    while True:
        line = response.fp.readline()
        if not line or line.startswith(b"--goatpose-frame--"):
            return None
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line == b"\r\n" and length is not None:
            data = response.fp.read(length)
            response.fp.readline()
            return data


def _image(width=640, height=480, level=0):
    image = np.full((height, width, 3), level, np.uint8)
    cv2.putText(image, str(level), (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return image


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not within {} s".format(timeout))
        time.sleep(0.01)


def _serve_threads():
    return [t for t in threading.enumerate() if t.name.startswith("goatpose-serve") and t.is_alive()]


def test_routes_serve_the_page_overlays_figures_and_health():
    with _served(streams=2, width=320) as (view, run):
        for index in range(3):
            view.write(_frame(run, 0, index, _image(level=10 * index)))
        status, headers, page = _get(view, "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"goatpose live" in page
        assert b"http://" not in page and b"https://" not in page  # no CDN: works offline
        assert _get(view, "/healthz")[:3:2] == (200, b"ok\n")
        status, headers, body = _get(view, "/snapshot/0.jpg")
        snapshot = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and snapshot.shape == (240, 320, 3)
        assert abs(int(snapshot[200, 300, 0]) - 20) <= 3  # the newest frame (level 20), scaled to --serve-width
        assert _get(view, "/snapshot/1.jpg")[0] == 404  # no frame yet
        assert [_get(view, path)[0] for path in ("/stream/2.mjpg", "/snapshot/x.jpg", "/nothing")] == [404] * 3
        connection, response = _open_stream(view, "/stream/0.mjpg")
        assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=goatpose-frame"
        first = cv2.imdecode(np.frombuffer(_next_part(response), np.uint8), cv2.IMREAD_COLOR)
        assert first.shape == (240, 320, 3) and abs(int(first[200, 300, 0]) - 20) <= 3
        view.write(_frame(run, 0, 3, _image(level=30)))
        second = cv2.imdecode(np.frombuffer(_next_part(response), np.uint8), cv2.IMREAD_COLOR)
        assert abs(int(second[200, 300, 0]) - 30) <= 3
        stats = json.loads(_get(view, "/stats")[2].decode("utf-8"))
        assert [(s["stream"], s["frames"], s["state"]) for s in stats["streams"]] == [(0, 4, "live"),
                                                                                     (1, 0, "starting")]
        assert stats["streams"][0]["clients"] == 1 and stats["model"] == "dotpose"
        view.end(0, None)
        assert _next_part(response) is None  # the stream ended: so does its MJPEG
        connection.close()


def test_events_carry_every_record_with_its_stream():
    with _served(streams=2) as (view, run):
        connection, response = _open_stream(view, "/events")
        assert response.getheader("Content-Type") == "text/event-stream"
        _wait_for(lambda: len(view.stats()["clients"]) == 1)
        frames = [_frame(run, index % 2, index // 2, _image(64, 48)) for index in range(6)]
        for frame in frames:
            view.write(frame)
        view.end(0, None)
        view.end(1, None)
        text = response.read().decode("utf-8")
        connection.close()
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: {\"")]
    assert events == [dict(frame.record, stream=frame.result.stream) for frame in frames]
    assert text.rstrip().endswith("event: end\ndata: {}")


@pytest.mark.parametrize("path", ["/", "/stream/0.mjpg", "/snapshot/0.jpg", "/events", "/stats", "/healthz"])
@pytest.mark.parametrize("given", ["none", "wrong query", "wrong bearer", "right in another parameter"])
def test_without_the_token_401_and_no_image(path, given):
    query, headers = {"none": ("", {}), "wrong query": ("?token=guess", {}),
                      "wrong bearer": ("", {"Authorization": "Bearer guess"}),
                      "right in another parameter": ("?tok=" + TOKEN, {})}[given]
    with _served(token=TOKEN) as (view, run):
        view.write(_frame(run, 0, 0, _image()))
        status, response_headers, body = _get(view, path + query, headers)
    assert status == 401 and response_headers["Content-Type"] == "text/plain" and b"\xff\xd8" not in body


@pytest.mark.parametrize("how", ["query", "bearer"])
def test_the_token_opens_every_route(how):
    with _served(token=TOKEN) as (view, run):
        view.write(_frame(run, 0, 0, _image()))
        query, headers = ("?token=" + TOKEN, {}) if how == "query" else ("", {"Authorization": "Bearer " + TOKEN})
        assert [_get(view, p + query, headers)[0] for p in ("/", "/snapshot/0.jpg", "/stats", "/healthz")] == [200] * 4


def test_at_most_serve_clients_then_503():
    with _served(clients=2, fps=1000.0) as (view, run):
        view.write(_frame(run, 0, 0, _image()))
        held = [_open_stream(view, "/stream/0.mjpg") for _ in range(2)]
        assert all(_next_part(response) for _, response in held)
        status, headers, body = _get(view, "/stats")
        assert status == 503 and headers["Retry-After"] == "5"
        held.pop()[0].close()  # its slot is freed when a next frame finds the client gone
        more = iter(range(1, 1000))
        _wait_for(lambda: view.write(_frame(run, 0, next(more), _image())) or len(view.stats()["clients"]) == 1)
        assert _get(view, "/stats")[0] == 200
        held[0][0].close()


def _stalled_client(port, path="/stream/0.mjpg"):
    """A client that asks and never reads (a small receive buffer, so that the server's socket fills soon)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    client.sendall("GET {} HTTP/1.1\r\nHost: localhost\r\n\r\n".format(path).encode("ascii"))
    return client


def test_stalled_clients_neither_block_the_sink_nor_grow_memory():
    images = [np.random.default_rng(seed).integers(0, 256, (480, 640, 3), np.uint8) for seed in range(4)]
    with _served(fps=1000.0) as (view, run):  # every frame encoded: the most a stalled client could pile up
        stalled = [_stalled_client(view.port) for _ in range(3)] + [_stalled_client(view.port, "/events")]
        _wait_for(lambda: len(view.stats()["clients"]) == 4)
        durations = []

        def write(first, count):
            for index in range(first, first + count):
                start = time.perf_counter()
                view.write(_frame(run, 0, index, images[index % 4]))
                durations.append(time.perf_counter() - start)

        writer = threading.Thread(target=write, args=(0, 30))
        writer.start()
        writer.join(60)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            writer = threading.Thread(target=write, args=(30, 270))
            writer.start()
            writer.join(60)
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert not writer.is_alive() and len(durations) == 300
        assert grown < 3e6, grown  # 270 noise JPEGs of ~250 kB each, were they queued: 67 MB
        assert max(durations) < 2.0 and sorted(durations)[150] < 0.1  # an encode, never a wait for a client
        stalled[0].setblocking(True)
        stalled[0].settimeout(10)
        def caught_up():  # the client took the newest frame, skipping what it could not take
            return [c for c in view.stats()["clients"] if c["kind"] == "mjpeg" and c["skipped"] > 250]

        while not caught_up():  # it reads again: after what its socket holds, the newest frame comes
            assert stalled[0].recv(1 << 20)
        assert caught_up()[0]["sent"] < 40  # no queue behind it
        for sock in stalled:
            sock.close()


def test_the_run_ends_every_response_and_frees_the_port():
    with _served() as (view, run):
        port = view.port
        view.write(_frame(run, 0, 0, _image()))
        stalled = [_stalled_client(port) for _ in range(2)]
        reading, response = _open_stream(view, "/stream/0.mjpg")
        _wait_for(lambda: len(view.stats()["clients"]) == 3)
        for index in range(1, 40):
            view.write(_frame(run, 0, index, np.random.default_rng(index).integers(0, 256, (480, 640, 3), np.uint8)))
    assert _serve_threads() == []  # the stalled clients' threads too: their sockets were shut
    while _next_part(response) is not None:  # the reader's response ended
        pass
    reading.close()
    again = LiveView(LiveOptions(port=port))  # the port is free again for the next run
    again.open(_run_info())
    again.close()
    for sock in stalled:
        sock.close()


def test_garbage_gets_400_and_the_view_goes_on():
    with _served() as (view, run):
        view.write(_frame(run, 0, 0, _image()))
        answers = []
        for garbage in (b"\x00\xff\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/9x\r\n\r\n",
                        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
            client = socket.create_connection(("127.0.0.1", view.port), timeout=10)
            client.sendall(garbage)
            answers.append(client.recv(64).split(b"\r\n")[0])
            client.close()
        assert [a.split(b" ")[1] for a in answers] == [b"400", b"400", b"414"]
        assert _get(view, "/snapshot/0.jpg")[0] == 200 and view.stats()["bad_requests"] >= 3


def _busy_port():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    return holder


@pytest.mark.parametrize("case, expected", [
    ("port in use", "the port is in use"),
    ("not this machine", "192.0.2.1 is not an address of this machine"),
    ("unknown host", "no-such-host.invalid is not a name or address this machine knows"),
    ("no stream", "there is no stream to serve"),
    ("newline in the token", "the token holds a control character ('\\n')"),
    ("outside without a token", "needs a token"),
])
def test_what_cannot_work_fails_open_in_one_line(case, expected):
    holder = _busy_port()
    options = {"port in use": LiveOptions(port=holder.getsockname()[1]),
               "not this machine": LiveOptions("192.0.2.1", 0, TOKEN),
               "unknown host": LiveOptions("no-such-host.invalid", 0, TOKEN),
               "no stream": LiveOptions(port=0),
               "newline in the token": LiveOptions(port=0, token="abc\ndef"),
               "outside without a token": LiveOptions("0.0.0.0", 0)}[case]
    view = LiveView(options)
    try:
        with pytest.raises(GoatPoseError) as error:
            view.open(_run_info(0 if case == "no stream" else 1))
    finally:
        holder.close()
        view.discard()
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert _serve_threads() == []


# -- through the command line ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, environ, expected", [
    (["--serve", "localhost:http"], {}, "--serve 'localhost:http': expected [HOST:]PORT"),
    (["--serve", "::1:8080"], {}, "put an IPv6 address in brackets"),
    (["--serve", "127.0.0.1:70000"], {}, "port in 0..65535"),
    (["--serve", "8080", "--serve-token", "ab\ncd"], {}, "--serve-token: the token holds a control character"),
    (["--serve", "8080"], {TOKEN_ENV: "ab\rcd"}, TOKEN_ENV + ": the token holds a control character"),
    (["--serve", "0.0.0.0:8080"], {}, "needs a token (--serve-token or " + TOKEN_ENV),
    (["--serve-width", "320", "--serve-fps", "5"], {}, "--serve-width, --serve-fps set the live view: add --serve"),
])
def test_command_line_mistakes_exit_2(argv, environ, expected, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["video", "in.avi", "--pose", "dot.onnx"] + argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The dot model; a short scene of walkers; a long one of a figure standing still (its truth is the same in every
    frame, whichever the page shows) that a slow detector (figures:50) makes last 20 s."""
    folder = tmp_path_factory.mktemp("live")
    short, still = str(folder / "walkers.avi"), str(folder / "still.avi")
    write_scene(short, short + ".truth.jsonl", walkers(frames=30, width=320, height=180, seed=3))
    write_scene(still, still + ".truth.jsonl", single(frames=400, width=320, height=240, velocity_xy=(0.0, 0.0)))
    return {"onnx": build_dot_pose_onnx(str(folder / "dotpose.onnx")), "short": short, "still": still,
            "truth": read_truth(still + ".truth.jsonl")[0]}


def test_a_port_in_use_fails_before_the_first_frame_in_one_line(scenes, tmp_path, capsys):
    holder = _busy_port()
    jsonl = str(tmp_path / "run.jsonl")
    try:
        code = main(["video", scenes["short"], "--pose", scenes["onnx"], "--detector", "figures", "--jsonl", jsonl,
                     "--serve", "127.0.0.1:{}".format(holder.getsockname()[1]), "--no-progress"])
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "the port is in use" in err
    assert os.listdir(str(tmp_path)) == []  # no half-written output left


class _During(Sink):
    """Calls ``act(view)`` when it opens (after the view: the server listens) and once more at frame ``at``."""

    name = "test hook"

    def __init__(self, view, act, at):
        self.view, self.act, self.at = view, act, at

    def open(self, run):
        self.act(self.view)

    def write(self, frame):
        if frame.result.index == self.at:
            self.act(self.view)


def test_misbehaving_clients_leave_the_run_and_its_outputs_intact(scenes, tmp_path):
    """Garbage and stalled clients during a real run: the JSONL is complete, /events carried exactly its records."""
    view = LiveView(LiveOptions(port=0))
    events, stalled = [], []
    reader = []

    def misbehave(view):
        garbage = socket.create_connection(("127.0.0.1", view.port), timeout=10)
        garbage.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        garbage.close()
        stalled.append(_stalled_client(view.port))
        if not reader:
            reader.append(threading.Thread(target=lambda: events.append(_read_events(view.port))))
            reader[0].start()
            _wait_for(lambda: any(c["kind"] == "events" for c in view.stats()["clients"]))

    jsonl = str(tmp_path / "run.jsonl")
    options = VideoOptions([scenes["short"], scenes["short"]], StreamOptions(scenes["onnx"], detector="figures"),
                           jsonl=jsonl.replace("run", "run{stream}"), progress=False)
    summary = run_video(options, sinks=[view, _During(view, misbehave, at=10)])
    reader[0].join(10)
    for sock in stalled:
        sock.close()
    assert [s.frames for s in summary.streams] == [30, 30] and view.stats()["bad_requests"] >= 2
    records = {i: read_jsonl(jsonl.replace("run", "run{}".format(i)))[1] for i in (0, 1)}
    assert [r["frame"] for r in records[0]] == list(range(30)) and [r["frame"] for r in records[1]] == list(range(30))
    assert sorted(events[0], key=lambda e: (e["stream"], e["frame"])) == [
        dict(record, stream=i) for i in (0, 1) for record in records[i]]


def _read_events(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/events")
    text = connection.getresponse().read().decode("utf-8")
    connection.close()
    return [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: {\"")]


# -- in a real browser ------------------------------------------------------------------------------------------------

def _browser_missing():
    """What the browser tests lack, or None."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return ", ".join(missing) or None


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        pytest.skip("browser tests skipped: they need Debian's chromium chromium-driver (apt-get install chromium "
                    "chromium-driver; make test does as root) and selenium (the dev extra); missing: " + missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="goatpose-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=900,700", "--user-data-dir=" + profile):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def _serving(scenes, sources, *flags):
    """``goatpose video SOURCES --serve 127.0.0.1:0 FLAGS`` running; yields its URL; stopped with SIGTERM, which
    ends it normally (exit 0) and frees the port."""
    process = subprocess.Popen([sys.executable, "-m", "goatpose_edge", "video"] + sources +
                               ["--pose", scenes["onnx"], "--detector", "figures:50", "--serve", "127.0.0.1:0",
                                "--no-progress"] + list(flags), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"live view: (http://\S+)", line)
        assert match, line + process.stderr.read()
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    port = int(match.group(1).rsplit(":", 1)[1].strip("/"))
    with contextlib.closing(socket.socket()) as probe:  # the port is free once the run ended
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def _text(driver, element_id):
    return driver.find_element("id", element_id).text


def _wait_text(driver, element_id, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(_text(d, element_id)) and _text(d, element_id))


def _skeleton_hits(tile_png, truth, frame_width, offset_x=0.0, colour=PALETTE[0]):
    """How many of the skeleton's limbs have a pixel of ``colour`` (BGR; default the first track's) within 2 px of
    their midpoint, the truth scaled to the tile as shown (the overlay draws limbs in the track's colour; the scene's
    are grey). The fleet dashboard's tests check its canvases with it too."""
    shot = cv2.imdecode(np.frombuffer(tile_png, np.uint8), cv2.IMREAD_COLOR)
    scale = shot.shape[1] / float(frame_width)
    colour = np.array(colour, float)
    hits = 0
    for i, j in COCO_SKELETON:
        x, y = ((truth.keypoints[i, :2] + truth.keypoints[j, :2]) / 2 * scale + [offset_x * scale, 0]).round()
        patch = shot[max(0, int(y) - 2):int(y) + 3, max(0, int(x) - 2):int(x) + 3].reshape(-1, 3).astype(float)
        hits += bool(patch.size) and np.linalg.norm(patch - colour, axis=1).min() < 60
    return hits


def test_the_page_shows_the_skeletons_where_the_truth_says_and_live_figures(browser, scenes, tmp_path):
    with _serving(scenes, [scenes["still"]], "--serve-token", TOKEN) as url:
        browser.get(url + "?token=" + TOKEN)
        frames = int(_wait_text(browser, "frames-0", lambda t: t.isdigit() and int(t) > 5))
        image = browser.find_element("id", "overlay-0")
        _wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", image) == 320)
        tile = image.screenshot_as_png
        later = int(_wait_text(browser, "frames-0", lambda t: t.isdigit() and int(t) > frames + 5))
        fps = float(_text(browser, "fps-0"))
        persons, followed = _text(browser, "persons-0"), _text(browser, "followed-0")
    truth = scenes["truth"][0]
    limbs = len(COCO_SKELETON)
    assert _skeleton_hits(tile, truth, 320) == limbs  # every limb drawn where the truth says
    assert _skeleton_hits(tile, truth, 320, offset_x=1.2 * truth.box[2]) == 0  # and nowhere beside the figure
    assert later > frames and 5 < fps < 40 and (persons, followed) == ("1", "1")


def test_two_streams_give_two_tiles(browser, scenes):
    with _serving(scenes, [scenes["still"], scenes["still"]]) as url:
        browser.get(url)
        for stream in (0, 1):
            _wait_text(browser, "frames-{}".format(stream), lambda t: t.isdigit() and int(t) > 3)
        images = browser.find_elements("css selector", ".tile img")
        _wait_for(lambda: all(browser.execute_script("return arguments[0].naturalWidth", i) == 320 for i in images))
        tiles = [image.screenshot_as_png for image in images]
        titles = [e.text for e in browser.find_elements("css selector", ".tile h2")]
        _write_screenshot(browser, os.environ.get("GOATPOSE_LIVE_SCREENSHOT"))
    assert len(images) == 2 and [t.split(":")[0] for t in titles] == ["0", "1"]
    assert [_skeleton_hits(tile, scenes["truth"][0], 320) for tile in tiles] == [len(COCO_SKELETON)] * 2


def _write_screenshot(browser, path):
    """The page cropped to its header and tiles, as the README shows it (written only when ``path`` is given)."""
    if not path:
        return
    tiles = browser.find_element("id", "tiles").rect
    page = cv2.imdecode(np.frombuffer(browser.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    right = min(page.shape[1], int(max(e.rect["x"] + e.rect["width"] for e in
                                       browser.find_elements("css selector", ".tile")) + 12))
    cv2.imwrite(path, page[:int(tiles["y"] + tiles["height"] + 12), :right], [cv2.IMWRITE_PNG_COMPRESSION, 9])


@pytest.mark.parametrize("query", ["", "?token=guess"])
def test_a_missing_or_wrong_token_gets_401_and_no_image(browser, scenes, query):
    with _serving(scenes, [scenes["still"]], "--serve-token", TOKEN) as url:
        browser.get(url + query)
        body = browser.find_element("tag name", "body").text
        images = browser.find_elements("tag name", "img")
        browser.get(url + "stream/0.mjpg" + query)
        stream_images = [browser.execute_script("return arguments[0].naturalWidth", i)
                         for i in browser.find_elements("tag name", "img")]
        status = http.client.HTTPConnection(url.split("/")[2], timeout=10)
        status.request("GET", "/snapshot/0.jpg" + query)
        response = status.getresponse()
        code, snapshot = response.status, response.read()
        status.close()
    assert "a token is required" in body and images == [] and stream_images in ([], [0])
    assert code == 401 and b"\xff\xd8" not in snapshot
