"""``goatpose video --publish`` through outages, against a real Mosquitto (host-side suite: the Python 3.6 device tests
run test_publish.py, the same publisher and paho-mqtt 1.6.1, without these slower cases): the broker killed and
restarted mid-run, stalled (SIGSTOP), goatpose killed mid-run, the last will."""

import os
import signal
import time

import pytest

from tests.mqtt.broker import MISSING, MOSQUITTO
from tests.mqtt.test_publish import (FRAMES, _Listening, _records, _strip, _video, _video_here, broker,  # noqa: F401
                                     scene)

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason=MISSING)


def test_the_broker_killed_and_restarted_mid_run_loses_nothing(scene, broker, tmp_path):
    listening = _Listening(broker.url, str(tmp_path / "archive"))
    process = _video(scene, tmp_path, "--publish", broker.url, "--device-id", "dev-k", "--detector", "figures:80",
                     wait=False)
    listening.wait_for("dev-k", [0], 5)
    broker.kill(signal.SIGKILL)
    time.sleep(1.0)
    broker.restart()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "connection to" in stderr and "lost" in stderr
    listening.wait_for("dev-k", [0], FRAMES)
    listening.close()
    got = listening.frames("dev-k", 0)
    assert [r["seq"] for r in got] == list(range(FRAMES))  # nothing lost, in order, duplicates skipped
    assert [_strip(r) for r in got] == _records(str(tmp_path / "run_0.jsonl"))


def test_a_stalled_broker_costs_the_pipeline_nothing_and_the_next_run_sends_the_rest(scene, broker, tmp_path, capsys,
                                                                                    monkeypatch):
    broker.kill(signal.SIGSTOP)
    status, _, stderr = _video_here(scene, tmp_path, capsys, monkeypatch, "--publish", broker.url, "--device-id",
                                    "dev-s")
    assert status == 0, stderr
    assert len(_records(str(tmp_path / "run_0.jsonl"))) == FRAMES  # every frame written while the broker slept
    assert "left in" in stderr and "the next run sends them first" in stderr
    broker.kill(signal.SIGCONT)
    listening = _Listening(broker.url, str(tmp_path / "archive"))
    status, _, stderr = _video(scene, tmp_path, "--publish", broker.url, "--device-id", "dev-s", "--max-frames", "5")
    assert status == 0, stderr
    listening.wait_for("dev-s", [0], FRAMES + 5)
    listening.close()
    got = listening.frames("dev-s", 0)
    runs = []
    for record in got:
        if not runs or runs[-1][0] != record["run"]:
            runs.append((record["run"], []))
        runs[-1][1].append(record["seq"])
    assert [seqs for _, seqs in runs] == [list(range(FRAMES)), list(range(5))]  # the spooled run first, whole


def test_goatpose_killed_mid_run_and_the_next_run_sends_its_spool_first(scene, broker, tmp_path):
    broker.kill(signal.SIGSTOP)  # nothing acknowledged: all of it stays in the spool
    process = _video(scene, tmp_path, "--publish", broker.url, "--device-id", "dev-9", "--detector", "figures:60",
                     wait=False, short_waits=True)  # 0.5 s, not 5, for the stalled broker's answer to the login
    deadline = time.time() + 30
    spool = str(tmp_path / "spool")
    while time.time() < deadline and sum(os.path.getsize(os.path.join(spool, n)) for n in os.listdir(spool)
                                         if n.endswith(".spool")) < 5000 if os.path.isdir(spool) else True:
        time.sleep(0.05)
    process.kill()
    process.communicate(timeout=30)
    broker.kill(signal.SIGCONT)
    listening = _Listening(broker.url, str(tmp_path / "archive"))
    status, _, stderr = _video(scene, tmp_path, "--publish", broker.url, "--device-id", "dev-9", "--max-frames", "2")
    assert status == 0, stderr
    assert "left by an earlier run" in stderr
    listening.wait_for("dev-9", [0], 3)
    time.sleep(1.0)
    listening.close()
    got = listening.frames("dev-9", 0)
    first_run = [r["seq"] for r in got if r["run"] == got[0]["run"]]
    assert first_run == list(range(len(first_run))) and 0 < len(first_run) < FRAMES  # whole up to the kill
    assert [r["seq"] for r in got[len(first_run):]] == [0, 1]


def test_a_device_killed_turns_offline_within_its_keepalive(scene, broker, tmp_path):
    listening = _Listening(broker.url, str(tmp_path / "archive"))
    process = _video(scene, tmp_path, "--publish", broker.url, "--device-id", "dev-w", "--mqtt-keepalive", "1",
                     "--detector", "figures:100", wait=False)
    listening.wait_for("dev-w", [0], 2)
    assert listening.listener.status.get("dev-w") == "online"
    process.kill()
    killed = time.time()
    process.communicate(timeout=30)
    while listening.listener.status.get("dev-w") != "offline" and time.time() - killed < 10:
        time.sleep(0.05)
    listening.close()
    assert listening.listener.status["dev-w"] == "offline" and time.time() - killed < 5  # the last will
