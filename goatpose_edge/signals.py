"""SIGTERM as a stop like Ctrl-C (docker stop, systemd, CI timeouts, torchrun tearing down, a scheduler).

Python's default for SIGTERM ends the process on the spot: half-written files stay beside their targets and
temporary folders stay in /tmp. Inside ``sigterm_as_interrupt()`` the first SIGTERM raises ``Terminated`` (a
``KeyboardInterrupt``) in the main thread instead, so every ``finally``, ``atomic_output`` and ``TemporaryDirectory``
runs; later SIGTERMs are ignored while it unwinds. The handler runs between Python bytecodes: a long native call (a
TensorRT build, an ONNX export step) finishes first. Stdlib only (device side, Python 3.6).
"""

import contextlib
import os
import signal
import threading


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _handler(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_as_interrupt(only_if_default: bool = False):
    """SIGTERM raises ``Terminated`` for the duration; the previous handler comes back afterwards.

    ``only_if_default``: leave a handler someone else installed alone (a library call inside the ``goatpose`` CLI,
    which has its own). Outside the main thread nothing is changed (only it can set handlers)."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or (
            only_if_default and previous is not signal.SIG_DFL):
        yield
        return
    try:
        signal.signal(signal.SIGTERM, _handler)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C and SIGTERM arriving inside the block take effect as it ends: a frame written to one output of
    ``goatpose video`` is written to all of them. Outside the main thread nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []

    def record(signum, frame):
        caught.append(signum)

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is None:  # installed outside Python: leave it alone
                continue
            signal.signal(signum, record)
            previous[signum] = handler
    except (ValueError, OSError):
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # delivered again, now that the handlers are back
            os.kill(os.getpid(), caught[0])
