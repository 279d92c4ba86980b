"""``goatpose video --publish`` against a real Mosquitto on loopback, with ``goatpose listen``'s listener at the
other end: every frame once and in order, equal to the JSONL; the broker killed and restarted, stalled, or down at
the start; goatpose killed mid-run; the last will; a refused login; a full spool. The device side: these run under
Python 3.6 with paho-mqtt 1.6.1 too (make test-py36)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from goatpose_edge.cli import main
from goatpose_edge.mqtt import publisher as publisher_module
from goatpose_edge.mqtt import spool as spool_module
from goatpose_edge.mqtt.client import parse_broker_url
from goatpose_edge.mqtt.listener import Listener
from goatpose_edge.synthetic import build_dot_pose_onnx, walkers, write_scene
from goatpose_edge.video.results import read_jsonl
from tests.helpers import REPO_ROOT
from tests.mqtt.broker import MISSING, MOSQUITTO, OPENSSL, Certificates, Mosquitto

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason=MISSING)

FRAMES = 30
#: what the publisher adds to the JSONL record
ADDED = ("device", "stream", "run", "seq", "captured", "size", "model")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("publish")
    video = str(folder / "walkers.avi")
    write_scene(video, video + ".truth.jsonl", walkers(frames=FRAMES, width=320, height=180, seed=6))
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), video


@pytest.fixture
def broker(tmp_path):
    mosquitto = Mosquitto(str(tmp_path / "broker")).start()
    yield mosquitto
    mosquitto.stop()


class _Listening:
    """A listener in a thread, archiving into ``out``."""

    def __init__(self, url, out):
        self.listener = Listener(parse_broker_url(url), out=out, print_line=lambda line: None,
                                 client_id="test-listener-{}".format(os.getpid()))
        self.stop, self.out = threading.Event(), out
        self.thread = threading.Thread(target=self.listener.run, args=(self.stop,), daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.listener.connected and time.time() < deadline:
            time.sleep(0.02)
        assert self.listener.connected

    def frames(self, device, stream):
        path = os.path.join(self.out, device, "{}.jsonl".format(stream))
        return [json.loads(line) for line in open(path)] if os.path.exists(path) else []

    def wait_for(self, device, streams, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(len(self.frames(device, s)) >= count for s in streams):
                return
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.thread.join(10)


#: ``python -m goatpose_edge`` with the publisher's waits of ``_ShortWaits`` (a process a test kills)
_SHORT_WAITS_ENTRY = """
import sys
from tests.mqtt import test_publish
test_publish.publisher_module.PublishOptions = test_publish._ShortWaits
from goatpose_edge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _video(scene, tmp_path, *extra, sources=1, wait=True, short_waits=False):
    """``goatpose video`` on the scene into ``tmp_path`` as a process ((status, stdout, stderr), or the running
    process without ``wait``); ``short_waits``: the publisher's waits of ``_ShortWaits``."""
    onnx, video = scene
    entry = ["-c", _SHORT_WAITS_ENTRY] if short_waits else ["-m", "goatpose_edge"]
    args = [sys.executable] + entry + ["video"] + [video] * sources + [
        "--pose", onnx, "--detector", "figures", "--jsonl", str(tmp_path / "run_{stream}.jsonl"), "--no-progress",
        "--spool", str(tmp_path / "spool")] + list(extra)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               cwd=REPO_ROOT)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


@dataclass
class _ShortWaits(publisher_module.PublishOptions):
    """The publisher's options with 0.5 s instead of 5 s for the broker's answer to the login and for the
    acknowledgements at the end (no flag sets them)."""

    close_grace_s: float = 0.5
    connect_timeout_s: float = 0.5


def _video_here(scene, tmp_path, capsys, monkeypatch, *extra):
    """``_video``'s command line run by ``goatpose_edge.cli.main`` in this process, the publisher's waits
    ``_ShortWaits``: for a run whose broker never answers (down, stalled), where those waits are only waited out
    (the end-to-end command runs as a process in every other test here). (status, stdout, stderr)."""
    onnx, video = scene
    argv = ["video", video, "--pose", onnx, "--detector", "figures", "--jsonl", str(tmp_path / "run_{stream}.jsonl"),
            "--no-progress", "--spool", str(tmp_path / "spool")] + list(extra)
    with monkeypatch.context() as patch:
        patch.setattr(publisher_module, "PublishOptions", _ShortWaits)
        status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _records(path):
    return read_jsonl(path)[1]


def _strip(record):
    return {k: v for k, v in record.items() if k not in ADDED}


def test_every_frame_arrives_once_in_order_and_equals_the_jsonl(scene, broker, tmp_path):
    listening = _Listening(broker.url + "/site", str(tmp_path / "archive"))
    status, _, stderr = _video(scene, tmp_path, "--publish", broker.url + "/site", "--device-id", "dev-a",
                               sources=3)
    assert status == 0, stderr
    counts = re.search(r"mqtt: (\d+) sent, (\d+) acknowledged\n", stderr)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 3 * FRAMES  # frames + tracks
    listening.wait_for("dev-a", range(3), FRAMES)
    listening.close()
    for stream in range(3):
        got = listening.frames("dev-a", stream)
        assert [r["seq"] for r in got] == list(range(FRAMES)) and len({r["run"] for r in got}) == 1
        assert [_strip(r) for r in got] == _records(str(tmp_path / "run_{}.jsonl".format(stream)))
        assert got[0]["device"] == "dev-a" and got[0]["stream"] == stream and got[0]["size"] == [320, 180]
        assert got[0]["model"] == "dotpose" and got[0]["captured"].endswith("Z")
    assert listening.listener.status["dev-a"] == "offline"  # a normal end says so itself


def test_a_broker_down_at_the_start_is_one_line_and_a_spool(scene, tmp_path, capsys, monkeypatch):
    from tests.mqtt.broker import free_port

    port = free_port()
    status, _, stderr = _video_here(scene, tmp_path, capsys, monkeypatch, "--publish",
                                    "mqtt://127.0.0.1:{}".format(port), "--device-id", "dev-d")
    assert status == 0, stderr
    assert stderr.count("unreachable") == 1 and "spooling to" in stderr and "retrying with backoff" in stderr
    late = Mosquitto(str(tmp_path / "late"), port=port).start()
    try:
        listening = _Listening(late.url, str(tmp_path / "archive"))
        status, _, stderr = _video(scene, tmp_path, "--publish", late.url, "--device-id", "dev-d", "--max-frames",
                                   "3")
        assert status == 0, stderr
        listening.wait_for("dev-d", [0], FRAMES + 3)
        listening.close()
        assert [r["seq"] for r in listening.frames("dev-d", 0)] == list(range(FRAMES)) + [0, 1, 2]
    finally:
        late.stop()


def test_a_refused_login_is_one_line_before_the_first_frame(scene, tmp_path):
    secured = Mosquitto(str(tmp_path / "secured"), users={"pose": "right"}).start()
    try:
        env = dict(os.environ, GOATPOSE_MQTT_PASSWORD="wrong")
        onnx, video = scene
        run = subprocess.run([sys.executable, "-m", "goatpose_edge", "video", video, "--pose", onnx, "--detector",
                              "figures", "--jsonl", str(tmp_path / "out.jsonl"), "--no-progress", "--spool",
                              str(tmp_path / "spool"), "--publish", "mqtt://pose@127.0.0.1:{}".format(secured.port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
        assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr  # mosquitto 2 says "not authorised"
        assert "refused the login: " in run.stderr and "GOATPOSE_MQTT_PASSWORD" in run.stderr
        assert "Traceback" not in run.stderr and not os.path.exists(str(tmp_path / "out.jsonl"))
        assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".")]
        env["GOATPOSE_MQTT_PASSWORD"] = "right"
        run = subprocess.run(run.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                             env=env)
        assert run.returncode == 0 and "acknowledged" in run.stderr, run.stderr
    finally:
        secured.stop()


def test_a_full_spool_drops_the_oldest_and_says_so(scene, tmp_path, monkeypatch):
    from tests.mqtt.broker import free_port
    from goatpose_edge.mqtt.publisher import MqttPublisher, PublishOptions
    from goatpose_edge.video.app import VideoOptions, run_video
    from goatpose_edge.video.engine import StreamOptions

    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 4000)
    lines = []
    publisher = MqttPublisher(PublishOptions("mqtt://127.0.0.1:{}".format(free_port()), device_id="dev-f",
                                             spool=str(tmp_path / "spool"), spool_max_mb=8000 / 2 ** 20,
                                             close_grace_s=0.5), lines.append)
    onnx, video = scene
    run_video(VideoOptions([video], StreamOptions(onnx, detector="figures"), progress=False), sinks=[publisher])
    assert publisher.spool.dropped > 0 and publisher.spool.pending + publisher.spool.dropped >= FRAMES
    assert "dropped: the spool was full (--spool-max-mb)" in lines[-1]


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (Debian package openssl)")
def test_tls_verifies_the_broker_and_a_certificate_that_does_not_is_one_line(scene, tmp_path):
    certificates = Certificates(str(tmp_path / "certs"))
    secured = Mosquitto(str(tmp_path / "tls"), tls=certificates).start()
    try:
        onnx, video = scene
        args = [sys.executable, "-m", "goatpose_edge", "video", video, "--pose", onnx, "--detector", "figures",
                "--no-progress", "--max-frames", "3", "--spool", str(tmp_path / "spool"), "--publish", secured.url]
        run = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        assert run.returncode == 1 and run.stderr.count("\n") == 1 and "TLS to mqtts://127.0.0.1:" in run.stderr
        assert "the broker's certificate does not verify" in run.stderr, run.stderr
        assert "give the CA that signed it with --mqtt-ca" in run.stderr
        run = subprocess.run(args + ["--mqtt-ca", certificates.ca], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        assert run.returncode == 0 and "acknowledged" in run.stderr and "left in" not in run.stderr, run.stderr
    finally:
        secured.stop()


@pytest.mark.parametrize("extra, message", [
    (["--publish", "mqtt:/broker"], "--publish 'mqtt:/broker': expected mqtt://[USER@]HOST[:PORT][/PREFIX]"),
    (["--publish", "mqtt://h:70000"], "port 70000 is outside 1..65535"),
    (["--publish", "mqtt://h/a/+/b"], "the topic prefix 'a/+/b' must be non-empty levels without + or #"),
    (["--publish", "mqtt://h", "--mqtt-ca", "ca.pem"], "--mqtt-ca given with mqtt://h:1883/goatpose: TLS needs an "
                                                       "mqtts:// URL"),
    (["--publish", "mqtt://h", "--device-id", "a/b"], "--device-id 'a/b': one topic level"),
    (["--spool", "x"], "--spool needs --publish mqtt://HOST"),
])
def test_publish_mistakes_are_one_line(scene, tmp_path, extra, message, capsys):
    onnx, video = scene  # the command's own parsing, in this process (the command runs as a process above)
    assert main(["video", video, "--pose", onnx] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
