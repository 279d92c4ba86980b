"""SIGTERM as a stop like Ctrl-C (docker stop, systemd, CI timeouts, torchrun tearing down, a scheduler).

Python's default for SIGTERM ends the process on the spot: half-written files stay beside their targets and
temporary folders stay in /tmp. Inside ``sigterm_as_interrupt()`` the first SIGTERM raises ``Terminated`` (a
``KeyboardInterrupt``) in the main thread instead, so every ``finally``, ``atomic_output`` and ``TemporaryDirectory``
runs; later SIGTERMs are ignored while it unwinds. The handler runs between Python bytecodes: a long native call (a
TensorRT build, an ONNX export step) finishes first.

A loop that must never be cut between two bytecodes (``goatpose video`` handing each frame from its engine to its
outputs) takes Ctrl-C and SIGTERM through a ``SignalInbox`` instead: ONE handler for the whole run, which only posts
the signal's number to a thread that acts on it; the loop itself is never interrupted. Stdlib only (device side,
Python 3.6).
"""

import contextlib
import os
import signal
import socket
import threading
import time
from typing import Optional


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
    """Ctrl-C and SIGTERM arriving inside the block take effect as it ends. For one block: around every step of a
    loop use ``SignalInbox`` (a signal arriving while this swaps the handlers can leave the recording one behind).
    Outside the main thread nothing is changed."""
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


class SignalInbox:
    """Ctrl-C and SIGTERM as messages that one thread takes in order (``take``), from ``install`` to ``close``.

    The handler, installed once for the whole run, only writes the signal's number into a socket pair: one byte, no
    lock, nothing raised, so the code it runs between (the main thread's) is never cut, and a thread blocked in
    ``take`` wakes up to act on it. ``end()``: no more messages (``take`` gives what is queued, then ``END``); signals
    arriving after it are dropped. ``close()`` puts the previous handlers back; a signal arriving during or after it
    is delivered as they would (the handler hands it over once closed, so a close cut short by a signal still leaves
    no recording handler behind); ``replay``: a signal taken from the inbox, delivered the same way.

        inbox = SignalInbox()      # assigned first: whoever closes it finds it, however far install got
        inbox.install()            # main thread (elsewhere nothing is installed: take and end still work)
        ...                        # another thread: while True: message = inbox.take(deadline) ...
        inbox.end(); inbox.close()

    Handlers set outside Python (None) and ignored signals (SIG_IGN: a job started in the background) are left as
    they are. Stdlib only (device side, Python 3.6)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    END = 0  # what ``take`` returns once ``end()`` was called and the queued signals were taken
    QUIT = 255  # ``post``ed by the program itself (``q`` in a window): a stop like a signal, not one

    def __init__(self):
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # the handler never waits
        self._previous = {}  # signum -> the handler before ours, recorded before ours is set
        self._closed = False

    def install(self) -> "SignalInbox":
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.SIGNALS:
            handler = signal.getsignal(signum)
            if handler is None or handler is signal.SIG_IGN:
                continue
            self._previous[signum] = handler
            signal.signal(signum, self._handler)
        return self

    def _handler(self, signum, frame) -> None:
        if self._closed:  # a close cut short by a signal left this one installed: behave as the previous one
            self._deliver(signum)
            return
        self.post(signum)

    def post(self, message: int) -> None:
        """Queue ``message`` (a signal number, or ``QUIT``) for ``take``; any thread, never waits."""
        try:
            self._writer.send(bytes((message,)))
        except OSError:  # ended (a signal while the outputs are finalised changes nothing), or full of stops already
            pass

    def take(self, deadline: Optional[float] = None) -> Optional[int]:
        """The next signal number, waiting for it until ``deadline`` (``time.monotonic()``; None: as long as it
        takes): None when it passed first (what is queued is still given), ``END`` once ended and drained."""
        self._reader.settimeout(None if deadline is None else max(0.0, deadline - time.monotonic()))
        try:
            data = self._reader.recv(1)
        except (socket.timeout, BlockingIOError):
            return None
        return data[0] if data else self.END

    def end(self) -> None:
        """No more messages: ``take`` gives what is queued, then ``END``."""
        try:
            self._writer.shutdown(socket.SHUT_WR)
        except OSError:  # ended already
            pass

    def close(self, replay: Optional[int] = None) -> None:
        """The previous handlers back, the socket pair closed; then ``replay`` (a signal number taken before) is
        delivered through its previous handler: ``KeyboardInterrupt`` for Ctrl-C, ``Terminated`` for SIGTERM under
        ``sigterm_as_interrupt`` or where it had Python's default."""
        try:
            self._closed = True  # first: from here a signal reaching our handler is delivered as before (and what
            self._restore(signal.SIGINT)  # it raises still lets the finally below restore and close)
        finally:
            try:
                self._restore(signal.SIGTERM)
            finally:
                self._reader.close()
                self._writer.close()
        if replay is not None:
            self._deliver(replay)

    def _restore(self, signum: int) -> None:
        handler = self._previous.get(signum)
        if handler is not None:
            signal.signal(signum, handler)

    def _deliver(self, signum: int) -> None:
        handler = self._previous.get(signum)
        self._restore(signum)
        if callable(handler):
            handler(signum, None)  # default_int_handler raises KeyboardInterrupt, sigterm_as_interrupt Terminated
        elif handler is signal.SIG_DFL:  # would end the process on the spot: unwind instead
            raise Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()
