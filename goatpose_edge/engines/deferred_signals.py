"""Ctrl-C and SIGTERM during a TensorRT build: recorded while TensorRT runs, raised once the build has returned.

The build is native code that releases the GIL. A signal arriving then runs its Python handler at the first bytecode
of the next calibrator callback, before any ``try`` in it, and the exception leaves the callback
(NVIDIA/TensorRT python/src/infer/pyInt8.cpp): on TensorRT 8.0/8.2 the trampolines are ``noexcept`` without a
try/catch, so the process aborts (status 134, the build's temporary folder left behind); later versions catch it,
print it and take it for "no more batches", so a cut-short calibration looks complete and the signal is lost.

So while ``DeferredSignals`` is entered (main thread only: only it can set handlers) SIGINT and SIGTERM only record;
the calibrator ends calibration once one is recorded (``pending``), and leaving the block restores the handlers and
delivers the first one as its previous handler would have: ``KeyboardInterrupt`` for Ctrl-C, ``signals.Terminated``
under ``sigterm_as_interrupt`` (or where SIGTERM had Python's default, which would end the process on the spot and
leave the temporary folder). Stdlib only (device side, Python 3.6).
"""

import signal
import threading

from goatpose_edge.signals import Terminated

_DEFAULT_EXCEPTIONS = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}


class DeferredSignals:
    """``with DeferredSignals() as signals: build()``; ``signals.pending()`` says whether one arrived meanwhile."""

    def __init__(self):
        self.received = []  # signal numbers recorded inside the block, in order
        self._previous = {}

    def pending(self) -> bool:
        return bool(self.received)

    def _record(self, signum, frame) -> None:
        self.received.append(signum)

    def __enter__(self) -> "DeferredSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _DEFAULT_EXCEPTIONS:
            handler = signal.getsignal(signum)
            if handler is None or handler is signal.SIG_IGN:  # set outside Python, or ignored: left as it is
                continue
            self._previous[signum] = handler
            signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if self.received:
            signum = self.received[0]
            handler = previous[signum]
            if handler is signal.SIG_DFL:
                raise _DEFAULT_EXCEPTIONS[signum]("SIGTERM" if signum == signal.SIGTERM else "")
            handler(signum, None)  # default_int_handler raises KeyboardInterrupt, sigterm_as_interrupt Terminated
