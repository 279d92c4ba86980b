"""The publisher's spool on its own: order, acknowledgements in any order, the pointer kept across runs and a
kill, the bound (oldest dropped and counted), torn lines, one process per folder."""

import json
import os
import subprocess
import sys

import pytest

from goatpose_edge.mqtt import spool as spool_module
from goatpose_edge.mqtt.spool import Spool, SpoolError


def _drain(spool):
    out = []
    while True:
        message = spool.next()
        if message is None:
            return out
        out.append(message)


def test_messages_leave_in_order_and_only_acknowledged_ones_are_gone(tmp_path):
    spool = Spool(str(tmp_path), 1 << 30)
    for index in range(5):
        spool.append("t/{}".format(index), "p{}".format(index))
    handed = _drain(spool)
    assert [m[2] for m in handed] == ["p0", "p1", "p2", "p3", "p4"] and spool.pending == 5
    spool.acked(handed[1][0])  # out of order: the pointer waits for p0
    assert spool.pending == 5
    spool.acked(handed[0][0])
    assert spool.pending == 3
    spool.close()
    again = Spool(str(tmp_path), 1 << 30)  # the next run: the unacknowledged ones first
    assert [m[2] for m in _drain(again)] == ["p2", "p3", "p4"] and again.pending == 3
    again.close()


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 200)
    spool = Spool(str(tmp_path), 400)  # two segments of ~200 bytes
    for index in range(40):
        spool.append("t", "payload-{:03d}".format(index))
    remaining = [m[2] for m in _drain(spool)]
    assert spool.dropped == 40 - len(remaining) > 0 and remaining[-1] == "payload-039"
    assert remaining == ["payload-{:03d}".format(i) for i in range(40 - len(remaining), 40)]  # the newest, in order
    assert spool.size_bytes <= 400 + 200
    spool.close()


def test_segments_fully_acknowledged_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 100)
    spool = Spool(str(tmp_path), 1 << 30)
    for index in range(20):
        spool.append("t", "message {:02d}".format(index))
    for position, _, _ in _drain(spool):
        spool.acked(position)
    assert spool.pending == 0 and len([n for n in os.listdir(str(tmp_path)) if n.endswith(".spool")]) == 1
    spool.close()


def test_a_killed_process_loses_nothing_appended(tmp_path):
    script = ("import os, sys; from goatpose_edge.mqtt.spool import Spool; s = Spool(sys.argv[1], 1 << 30)\n"
              "for i in range(50): s.append('t', 'p%d' % i)\nos.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)])
    spool = Spool(str(tmp_path), 1 << 30)  # the lock died with the process
    assert [m[2] for m in _drain(spool)] == ["p%d" % i for i in range(50)]
    spool.close()


def test_a_damaged_line_is_skipped_and_a_torn_tail_cut(tmp_path):
    spool = Spool(str(tmp_path), 1 << 30)
    spool.append("t", "whole")
    spool.close()
    segment = os.path.join(str(tmp_path), [n for n in os.listdir(str(tmp_path)) if n.endswith(".spool")][0])
    with open(segment, "ab") as f:
        f.write(b"garbage\nt\tcut by a crash")  # a damaged line, then one a crash cut before its newline
    spool = Spool(str(tmp_path), 1 << 30)
    spool.append("t", "after")
    assert [m[2] for m in _drain(spool)] == ["whole", "after"]
    spool.close()


def test_one_process_per_spool(tmp_path):
    first = Spool(str(tmp_path), 1 << 30)
    second = subprocess.run([sys.executable, "-c", "import sys; from goatpose_edge.mqtt.spool import Spool; "
                             "Spool(sys.argv[1], 1 << 30)", str(tmp_path)], stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert second.returncode != 0 and "is in use by another goatpose process" in second.stderr
    first.close()
    with pytest.raises(SpoolError, match="cannot use it"):
        Spool(str(tmp_path / "lock" / "x"), 1 << 30)  # a folder under a file


def test_the_pointer_file_is_json(tmp_path):
    spool = Spool(str(tmp_path), 1 << 30)
    spool.append("t", "p")
    position = _drain(spool)[0][0]
    spool.acked(position)
    spool.close()
    record = json.load(open(os.path.join(str(tmp_path), "acked.json")))
    assert record == {"segment": position[0], "offset": position[1] + len("t\tp\n")}
