"""SIGTERM (docker stop, systemd, CI timeouts) is a stop like Ctrl-C: nothing half-written is left anywhere.

``goatpose video``'s finalised outputs under SIGTERM are checked in tests/video/test_video_app.py.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from goatpose_edge import cli
from goatpose_edge.signals import Terminated, sigterm_as_interrupt


def _wait_for(predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_export_stopped_by_sigterm_leaves_nothing(tmp_path):
    """The reported debris: a hidden 62 MB ``.x.XXXX.tmp.onnx`` beside the target and ``goatpose-export-*`` in /tmp."""
    pytest.importorskip("torch")  # host side (the device venv has none)
    out, temp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    process = subprocess.Popen([sys.executable, "-m", "goatpose_edge", "export", "goatpose-bl", "-o",
                                str(out / "bl.onnx")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
    started = _wait_for(lambda: os.listdir(str(temp)))  # the export's temporary folder exists: it is under way
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert started, stderr
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "goatpose: terminated (SIGTERM); nothing half-written was left"
    assert os.listdir(str(out)) == [] and os.listdir(str(temp)) == []


def test_sigterm_handler_is_restored_after_main(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["lint", str(tmp_path / "missing.onnx")]) == 1
    assert signal.getsignal(signal.SIGTERM) == before


def test_terminated_unwinds_like_ctrl_c(tmp_path):
    """Inside main, SIGTERM raises ``Terminated`` (a KeyboardInterrupt): every ``finally`` and atomic_output runs."""
    from goatpose_edge.fileio import atomic_output

    target = str(tmp_path / "a.onnx")
    with sigterm_as_interrupt():
        try:
            with atomic_output(target) as tmp:
                open(tmp, "w").write("half")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here
            raise AssertionError("SIGTERM did not interrupt")
        except Terminated:
            pass
    assert os.listdir(str(tmp_path)) == []


def test_interrupts_inside_a_deferred_block_arrive_after_it():
    import os as _os
    import signal as _signal

    from goatpose_edge.signals import interrupts_deferred

    reached = []
    before = _signal.signal(_signal.SIGINT, _signal.default_int_handler)  # whatever an earlier test left
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_deferred():
                _os.kill(_os.getpid(), _signal.SIGINT)
                for _ in range(1000):  # bytecodes run: a default handler would have raised by now
                    pass
                reached.append("end of block")
                assert _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler
            time.sleep(0.1)  # the re-sent signal is handled at the next bytecodes (before this returns)
        assert reached == ["end of block"]
        assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    finally:
        _signal.signal(_signal.SIGINT, before)
