"""``goatpose listen``: duplicates skipped and gaps counted per run, malformed messages and foreign topics skipped
and counted, live lines per device and stream; the command against a real broker and an unreachable one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from goatpose_edge.cli import main
from goatpose_edge.mqtt.client import parse_broker_url
from goatpose_edge.mqtt.listener import Listener
from tests.mqtt.broker import MISSING, MOSQUITTO, Mosquitto, free_port


def _frame(run, seq, persons=1):
    return json.dumps({"frame": seq, "time": seq / 25.0, "persons": [{"id": i} for i in range(persons)], "run": run,
                       "seq": seq, "device": "d", "stream": 0}).encode()


def test_duplicates_are_skipped_gaps_counted_and_bad_messages_counted(tmp_path):
    listener = Listener(parse_broker_url("mqtt://h/p"), out=str(tmp_path))
    topic = "p/v1/d/0/frame"
    for seq in (0, 1, 1, 2, 0, 5, 4):  # 1 and 0 twice (at least once), 3 never came
        listener.receive(topic, _frame("r1", seq), now=10.0)
    listener.receive(topic, _frame("r2", 0), now=10.5)  # a new run starts at 0 again
    listener.receive(topic, b"{not json", now=11.0)
    listener.receive(topic, json.dumps({"frame": 1}).encode(), now=11.0)  # no run, no seq
    listener.receive("p/v1/d/0/frame/extra", _frame("r1", 9), now=11.0)
    listener.receive("p/v1/d/status", json.dumps({"state": "online"}).encode(), now=11.0)
    lines = listener.lines(now=12.0)
    assert lines[0] == "d/0: online, 1.2 fps, 1.0 persons, last seen 1.5 s ago, 6 frames, 1 missing, " \
                       "2 duplicates skipped"
    assert lines[1] == "skipped: 2 malformed messages, 1 outside the topic layout"
    listener.streams["d", "0"].file.close()
    written = [json.loads(line) for line in open(str(tmp_path / "d" / "0.jsonl"))]
    assert [(r["run"], r["seq"]) for r in written] == [("r1", 0), ("r1", 1), ("r1", 2), ("r1", 5), ("r1", 4),
                                                       ("r2", 0)]


def test_an_unreachable_broker_is_one_line():
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "listen", "mqtt://127.0.0.1:{}".format(free_port())],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert run.returncode == 1 and "cannot reach the broker mqtt://127.0.0.1:" in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr


@pytest.mark.parametrize("args, message", [
    (["http://broker"], "broker 'http://broker': expected mqtt://"),
    (["mqtt://b", "--mqtt-cert", "c.pem"], "--mqtt-cert given with mqtt://b:1883/goatpose: TLS needs an mqtts:// URL"),
])
def test_listen_mistakes_are_one_line(args, message, capsys):
    assert main(["listen"] + args) == 2  # the command's own checks, in this process (it runs as a process below)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.skipif(MOSQUITTO is None, reason=MISSING)
def test_the_listen_command_archives_and_stops_on_sigterm(tmp_path):
    broker = Mosquitto(str(tmp_path / "broker")).start()
    try:
        out = str(tmp_path / "archive")
        listen = subprocess.Popen([sys.executable, "-m", "goatpose_edge", "listen", broker.url + "/site", "--out", out,
                                   "--client-id", "test-listen-cli"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
        first = listen.stdout.readline()
        assert first.startswith("listening to mqtt://127.0.0.1:{}/site".format(broker.port)), first
        from goatpose_edge.mqtt.client import TlsFiles, new_client

        client = new_client("test-publisher", parse_broker_url(broker.url), TlsFiles())
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        infos = [client.publish("site/v1/dev/3/frame", _frame("r", seq).decode(), qos=1) for seq in range(4)]
        infos.append(client.publish("site/v1/dev/status", json.dumps({"state": "online"}), qos=1, retain=True))
        for info in infos:
            info.wait_for_publish()
        path = os.path.join(out, "dev", "3.jsonl")
        deadline = time.time() + 20
        while time.time() < deadline and (not os.path.exists(path) or len(open(path).readlines()) < 4):
            time.sleep(0.05)
        client.disconnect()
        client.loop_stop()
        listen.send_signal(signal.SIGTERM)
        stdout, stderr = listen.communicate(timeout=30)
        assert listen.returncode == 0, stderr
        assert [json.loads(line)["seq"] for line in open(path)] == [0, 1, 2, 3]
        assert "dev/3: online" in stdout and "4 frames" in stdout and "Traceback" not in stderr
    finally:
        broker.stop()
