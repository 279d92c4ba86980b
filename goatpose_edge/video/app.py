"""``goatpose video``: one or many sources through the streaming engine (``video.engine``) into per-stream
overlay videos, JSONL and windows.

    summary = run_video(VideoOptions(["in.mp4"], StreamOptions(pose="export/goatpose-bl_256x192.onnx"),
                                     output="out.mp4"))

Every exit path (the end of a file, ``max_frames``, Ctrl-C, ``q`` in the window, SIGTERM, a lost camera, an error in
any stage) finalises the outputs first; a stream that ends (or is lost) is finalised at once while the others go
on. Ctrl-C, SIGTERM and ``q`` are a normal stop (exit 0): the frames in flight are still written, a second Ctrl-C
stops at once. A live source that stops delivering frames, a file whose first frame cannot be decoded and a failed
stage are errors (exit 1), raised after the outputs are finalised.
JSONL keypoints are clamped to the frame (a person cut by the border otherwise gets points outside the image).

Signals never interrupt the run: from the moment its outputs exist until they are finalised, ONE handler
(``signals.SignalInbox``) only posts Ctrl-C and SIGTERM to a thread of their own (``_Stops``), the only one that stops
the engine for them. The thread that hands each event from the engine to the outputs is never cut between two
bytecodes, so an event taken is written to every output of its stream or, once the run is aborted, to none; the
finalisation closes or discards every output whatever arrives meanwhile. A signal before the engine starts is
delivered as the handler before ours would (KeyboardInterrupt, ``Terminated``) once the empty outputs are closed.
"""

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.signals import SignalInbox
from goatpose_edge.video.engine import STOP_GRACE_S, StopTimeout, StreamEnd, StreamEngine, StreamOptions
from goatpose_edge.video.outputs import (JsonlFile, OverlayVideo, SummaryFile, Window, check_output_path,
                                        check_video_extension, resident_mb)
from goatpose_edge.video.results import StreamStats
from goatpose_edge.video.flow import Aborted
from goatpose_edge.video.sinks import RunInfo, Sink, SinkSet, StreamInfo
from goatpose_edge.video.sources import SourceError, source_file

#: resident memory is sampled every this many frames (the summary shows whether it stays flat)
RSS_EVERY = 50


#: the placeholder in -o / --jsonl that expands to a source's 0-based position on the command line
STREAM_PLACEHOLDER = "{stream}"


@dataclass
class VideoOptions:
    sources: List[str]
    engine: StreamOptions  # pose model, detector, workers, smoothing, ... (``video.engine``)
    output: Optional[str] = None  # overlay video; "{stream}" expands to the source's position
    jsonl: Optional[str] = None  # one JSON line per frame; "{stream}" as for output
    show: bool = False
    raw_keypoints: bool = False  # JSONL also holds the decoder's keypoints when smoothing
    encoder: str = "auto"  # auto | opencv | gstreamer
    progress: bool = True
    summary_json: Optional[str] = None  # the run's summary as JSON, written when the run ends (whatever way)
    command: str = ""  # the command line, recorded in the summary
    stop_grace: float = STOP_GRACE_S  # seconds a stop (Ctrl-C, SIGTERM, q) waits for the frames in flight


@dataclass
class RunSummary:
    """A whole run: one ``VideoSummary`` per stream, the engine's figures and the total."""

    streams: List[StreamStats]
    seconds: float = 0.0
    ended: str = ""  # how the run as a whole ended (the first stream's reason when all agree)
    rss_mb: List[List[float]] = field(default_factory=list)  # [[frames so far, resident MB], ...]
    engine: dict = field(default_factory=dict)  # workers, busy time and utilisation per stage, detector runs
    dropped_by_outputs: Dict[str, int] = field(default_factory=dict)  # live outputs' frames replaced by newer ones
    command: str = ""  # the command line that ran (goatpose video ...)
    model: str = ""  # the pose model's name (its contract)
    weights: str = ""  # where its weights came from (the contract's ``weights``)
    random_weights: bool = False
    detector: str = ""

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)

    @property
    def persons(self) -> int:
        return sum(s.persons for s in self.streams)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def outputs(self) -> List[str]:
        return [p for s in self.streams for p in s.outputs]

    def lines(self) -> List[str]:
        """One line per stream and, with several, a total; then pose and detector rates."""
        if len(self.streams) == 1:
            lines = [self.streams[0].line()]
        else:
            lines = ["stream {} ({}): {}".format(i, s.source, s.line()) for i, s in enumerate(self.streams)]
            lines.append("total: {} frames of {} streams in {:.1f} s ({:.2f} fps), {} persons ({:.1f}/s)".format(
                self.frames, len(self.streams), self.seconds, self.fps, self.persons,
                self.persons / self.seconds if self.seconds else 0.0))
        for index, stream in enumerate(self.streams):
            warning = stream.following_line()
            if warning:
                lines.append("{}{}".format("stream {}: ".format(index) if len(self.streams) > 1 else "", warning))
        runs = sum(s.detector_runs for s in self.streams)
        lines.append("pose {:.2f} fps, detector {:.2f} runs/s ({} runs for {} frames), {} pose worker{}".format(
            self.fps, runs / self.seconds if self.seconds else 0.0, runs, self.frames, self.engine.get("workers", 0),
            "s" if self.engine.get("workers", 0) != 1 else ""))
        return lines

    def to_dict(self) -> dict:
        return {"command": self.command, "model": self.model, "weights": self.weights,
                "random_weights": self.random_weights, "detector": self.detector,
                "streams": [s.to_dict() for s in self.streams], "frames": self.frames, "persons": self.persons,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 3), "ended": self.ended,
                "outputs": self.outputs, "engine": self.engine, "dropped_by_outputs": self.dropped_by_outputs,
                "resident_memory": [{"frames": frames, "resident_mb": mb} for frames, mb in self.rss_mb]}


def expand_outputs(pattern: Optional[str], count: int, option: str) -> List[Optional[str]]:
    """``pattern`` per stream: "{stream}" -> 0, 1, ...; several streams need the placeholder (one clear line)."""
    if pattern is None:
        return [None] * count
    if count > 1 and STREAM_PLACEHOLDER not in pattern:
        raise GoatPoseError("{} {}: {} sources need {} in the name, e.g. {}".format(
            option, pattern, count, STREAM_PLACEHOLDER, _example(pattern)))
    return [pattern.replace(STREAM_PLACEHOLDER, str(i)) for i in range(count)]


def _example(pattern: str) -> str:
    stem, ext = os.path.splitext(pattern)
    return "{}_{}{}".format(stem, STREAM_PLACEHOLDER, ext)


class _Stops:
    """Ctrl-C and SIGTERM during the delivery, taken from ``inbox`` by a thread of their own, the only one that stops
    the engine for them: the first stops it (no more frames admitted; the frames in flight still come out) and, when
    the frames in flight have not all come out within ``grace`` seconds, ends the run (the engine and the outputs
    aborted: ``timed_out``); a second one ends it at once. What it does wakes the delivering thread wherever it
    waits (the engine's next event, room in an output). ``q`` in a window is posted to the same inbox
    (``SignalInbox.QUIT``): a stop like the first signal, within the same grace, but no interruption. ``taken``,
    ``interrupted`` and ``timed_out`` are written by this thread only (read by others: ``timed_out`` as it is, the
    counts once ``end`` returned)."""

    def __init__(self, inbox: SignalInbox, engine: StreamEngine, sinks: SinkSet, grace: float):
        self.inbox, self.engine, self.sinks, self.grace = inbox, engine, sinks, grace
        self.taken = 0  # stops taken: signals and QUIT
        self.interrupted = 0  # signals taken
        self.timed_out = False
        self._thread = threading.Thread(target=self._run, name="goatpose-stops", daemon=True)

    def start(self) -> "_Stops":
        try:
            self._thread.start()
        except RuntimeError as exc:  # "can't start new thread": nothing has started yet
            raise GoatPoseError("cannot start a thread ({}): raise the limit (ulimit -u / -v)".format(exc)) from exc
        return self

    def end(self) -> None:
        """No more stops: the thread acts on the signals already posted, then leaves (joined; it never waits on
        anything but the inbox)."""
        self.inbox.end()
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        deadline = None  # the first stop's end (time.monotonic())
        while True:
            message = self.inbox.take(deadline)
            if message == SignalInbox.END:
                return
            if message == SignalInbox.QUIT and self.taken:  # q again (a key held down), or after Ctrl-C: stopping
                continue                                          # already; only a signal ends a stop at once
            if message is not None:
                self.taken += 1
                self.interrupted += message != SignalInbox.QUIT
            if message is not None and self.taken == 1:
                deadline = time.monotonic() + self.grace
                self.engine.stop()
                continue
            self.timed_out = self.timed_out or message is None  # before the aborts: whoever they wake reads it
            deadline = None
            self.engine.abort()
            self.sinks.abort()


class VideoRunError(SourceError):
    """A run that ended badly after its outputs were finalised; ``summary`` (a ``RunSummary``) says how far it got."""

    def __init__(self, summary: "RunSummary", message: str):
        super().__init__(message)
        self.summary = summary


def _progress(total: Optional[int], enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="frame", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def check_display(cv2=None, platform: Optional[str] = None, environ=None, probe: bool = True) -> None:
    """One ``GoatPoseError`` line when ``--show`` cannot open a window: on Linux with neither DISPLAY nor
    WAYLAND_DISPLAY set, with an OpenCV built without a GUI (opencv-python-headless), or when a window does not
    open (``probe``: a display that is set but not there, ``DISPLAY=:99``: OpenCV's Qt/GTK backend aborts the
    process, so a child process tries first). Windows and macOS always have a display: not checked."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform.startswith("linux") and not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise GoatPoseError("--show needs a display (DISPLAY is not set): run it in a desktop session or over "
                            "`ssh -X`, or drop --show and write the overlay with -o out.mp4")
    if cv2 is not None:
        match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
        if match and match.group(1).upper() == "NONE":
            raise GoatPoseError("--show needs an OpenCV with a GUI, and this one has none (opencv-python-headless?): "
                                "drop --show and write the overlay with -o out.mp4, or install opencv-python")
    if probe and platform.startswith("linux"):
        _probe_window(environ)


_WINDOW_PROBE = ("import cv2, numpy; cv2.namedWindow('goatpose'); cv2.imshow('goatpose', numpy.zeros((8, 8, 3), "
                 "numpy.uint8)); cv2.waitKey(1); cv2.destroyAllWindows()")


def _probe_window(environ) -> None:
    try:
        run = subprocess.run([sys.executable, "-c", _WINDOW_PROBE], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=dict(environ), timeout=20)
    except subprocess.TimeoutExpired:
        raise GoatPoseError("--show: opening a window on display {} did not finish within 20 s: check the display, "
                            "or drop --show and write the overlay with -o out.mp4".format(
                                environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))) from None
    if run.returncode != 0:
        lines = [l for l in run.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        raise GoatPoseError("--show: no window opens on display {} ({}): check DISPLAY (a desktop session, or "
                            "`ssh -X`), or drop --show and write the overlay with -o out.mp4".format(
                                environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"),
                                lines[-1][:160] if lines else "exit status {}".format(run.returncode)))


def check_video_options(options: VideoOptions) -> List[tuple]:
    """Everything checkable before a source or model opens -> [(output, jsonl)] per stream; the model and the
    options first, then each output once against the set of input files (linear in the number of sources)."""
    import cv2

    if not options.sources:
        raise GoatPoseError("give at least one video source")
    options.engine.check()
    if not os.path.isfile(options.engine.pose):
        raise GoatPoseError("artefact not found: {}".format(options.engine.pose))
    count = len(options.sources)
    if options.summary_json and STREAM_PLACEHOLDER in options.summary_json:
        raise GoatPoseError("--summary-json {}: the summary is one file for the whole run, every stream in it: drop "
                            "{}".format(options.summary_json, STREAM_PLACEHOLDER))
    outputs = expand_outputs(options.output, count, "-o")
    jsonls = expand_outputs(options.jsonl, count, "--jsonl")
    inputs = {}
    for source in options.sources:
        path = source_file(source)
        if path is not None:
            inputs.setdefault(_identity(path), path)
    seen = {}
    for option, paths in (("-o", outputs), ("--jsonl", jsonls), ("--summary-json", [options.summary_json])):
        for index, path in enumerate(paths):
            if not path:
                continue
            key = _identity(path)
            owner = "{} of stream {}".format(option, index) if count > 1 and option != "--summary-json" else option
            if key in seen:
                raise GoatPoseError("{} and {} name the same file {}: give each its own name{}".format(
                    seen[key], owner, path, " (use {})".format(STREAM_PLACEHOLDER) if count > 1 else ""))
            seen[key] = owner
            if key in inputs:
                raise GoatPoseError("refusing to write {} {}: it is the input video {}; choose another name".format(
                    option, path, inputs[key]))
            check_output_path(path, option=option)
            if option == "-o":
                check_video_extension(path)
    if options.encoder == "gstreamer":
        from goatpose_edge.video.sources import gstreamer_available

        if not gstreamer_available(cv2):
            raise GoatPoseError("--encoder gstreamer: this OpenCV has no GStreamer support (on a Jetson use the "
                                "system OpenCV from JetPack, not a pip wheel), or use --encoder opencv")
    if options.show:  # last: it opens a window (in a child process)
        check_display(cv2)
    return list(zip(outputs, jsonls))


def _identity(path: str):
    """What makes two spellings one file: (device, inode) of an existing file, else the resolved path."""
    try:
        info = os.stat(path)
        return info.st_dev, info.st_ino
    except OSError:
        return os.path.realpath(path)


def run_video(options: VideoOptions, log: Callable[[str], None] = lambda line: None,
              sinks: Optional[List[Sink]] = None) -> RunSummary:
    """Pose on every source of ``options`` through one ``StreamEngine`` into the outputs (sinks), finalised on
    every exit path. ``sinks``: more outputs beside the ones ``options`` names. Raises ``VideoRunError`` (with the
    summary) when a stream was lost or failed, a stage or an output failed, or a stop timed out."""
    run = _VideoRun(options, log, sinks or [])  # every source opened, or none
    error = None
    try:
        run.open_outputs()
        run.announce()
        run.deliver()
    except GoatPoseError as exc:
        error = exc
    finally:
        run.finalise()
    return run.verdict(error)


class _VideoRun:
    """The steps of ``run_video``: open the outputs, announce, deliver the engine's events to the sinks, finalise
    (on every exit path), and the verdict (the summary, or the one error that says what went wrong)."""

    def __init__(self, options: VideoOptions, log: Callable[[str], None], extra: List[Sink]):
        self.targets = check_video_options(options)
        self.options, self.log, self.extra = options, log, extra
        self.multi = len(options.sources) > 1
        self.engine = StreamEngine(options.sources, options.engine)
        self.summary = RunSummary([s.stats for s in self.engine.streams])
        self.sinks = None  # type: Optional[SinkSet]
        self.bar = None
        self.total = None  # type: Optional[int]  # frames expected (open_outputs), for the progress bar
        self.signals = None  # type: Optional[SignalInbox]  # Ctrl-C and SIGTERM, from the outputs' opening on
        self.cancelled = None  # type: Optional[int]  # a signal taken before the engine started: the run did not
        self.ended = set()  # streams whose end was delivered
        self.stalled = False  # a stop ended because the outputs took no frame within its grace
        self.timed_out = False  # a stop ended because the frames in flight did not all come out within its grace

    def open_outputs(self) -> None:
        """Runners and detectors loaded, the sinks opened (a file that cannot be created fails here, before any
        frame), the frames expected counted for the progress bar."""
        engine, options = self.engine, self.options
        engine.open(self.log)  # the long part (models loaded): Ctrl-C and SIGTERM raise as before it, nothing is written yet
        self.signals = SignalInbox()  # assigned before its handler is set: ``finalise`` puts back what was set
        self.signals.install()
        sinks = []  # type: List[Sink]
        try:
            for stream, (output, jsonl) in zip(engine.streams, self.targets):
                if output:
                    sinks.append(OverlayVideo(output, stream.index, stream.stats.fps_nominal, options.encoder))
                if jsonl:
                    sinks.append(JsonlFile(jsonl, stream.index, options.engine.smooth))
        except BaseException:
            for sink in sinks:
                sink.discard()
            raise
        if options.show:
            sinks.append(Window(len(engine.streams), self._quit))
        sinks.append(SummaryFile(self.summary, options.summary_json, RSS_EVERY))
        run = RunInfo([StreamInfo(s.index, s.stats.source, s.spec.live, s.stats.fps_nominal, s.stats.frame_count,
                                  s.stats) for s in engine.streams], engine.contract, options.engine.detector,
                      lambda: engine.elapsed)
        self.sinks = SinkSet(sinks + self.extra, self._draw, options.raw_keypoints).open(run)
        counts = [s.stats.frame_count for s in engine.streams]
        limit = options.engine.max_frames
        total = (sum(min(c, limit) if limit else c for c in counts) if all(counts) else
                 (limit * len(counts) if limit else None))
        self.total = total  # the progress bar's, started after the start lines (``announce``): tqdm draws at once

    def _draw(self, result, image):
        from goatpose_edge.draw import draw_persons

        stats = self.engine.streams[result.stream].stats
        fps = (stats.frames + 1) / max(self.engine.elapsed, 1e-9)
        contract = self.engine.contract
        return draw_persons(image, result.persons, contract.skeleton, fps=fps, ids=result.ids,
                            label="stream {}".format(result.stream) if self.multi else None,
                            warning="RANDOM WEIGHTS: poses are noise" if contract.random_weights else None)

    def _quit(self) -> None:
        """``q`` or Esc in a window (the window's thread): a normal stop, bounded by --stop-grace (``_Stops``)."""
        self.signals.post(SignalInbox.QUIT)

    def announce(self) -> None:
        for stream, (output, jsonl) in zip(self.engine.streams, self.targets):
            self.log("{}{}: {} -> {}{}".format("stream {} ".format(stream.index) if self.multi else "",
                                               stream.stats.source, os.path.basename(self.options.engine.pose),
                                               output or "-", ", " + jsonl if jsonl else ""))
        warning = self.engine.contract.weights_warning()
        if warning:
            self.log(warning)
        if not (self.options.output or self.options.jsonl or self.options.show or self.extra):
            self.log("note: no -o, --jsonl or --show: poses are computed and counted only")
        self.bar = _progress(self.total, self.options.progress)  # below the lines above, never glued to them

    def deliver(self) -> None:
        """Every event to the sinks until the engine is done. Ctrl-C / SIGTERM (``_Stops``): the frames in flight
        still come out, within ``stop_grace``; a second one: now. One taken before the engine started: it does not
        start (``finalise`` delivers the signal as before)."""
        engine = self.engine
        self.cancelled = self.signals.take(deadline=time.monotonic())  # this thread's last take: then _Stops's
        if self.cancelled is not None:
            self.summary.ended = "interrupted"
            return
        stops = _Stops(self.signals, engine, self.sinks, self.options.stop_grace).start()
        try:
            engine.start()
            while True:
                event = engine.next_event()  # never interrupted: the event is written (or the run was aborted)
                if event is None:
                    break
                if isinstance(event, StreamEnd):
                    self.sinks.end(event.stream, event.stats)
                    self.ended.add(event.stream)
                else:
                    self._write(event, stops)
        finally:
            stops.end()  # joined: what it wrote is read below
            self.summary.ended = "interrupted" if stops.interrupted else ""
            self.timed_out = stops.timed_out and not self.stalled and len(self.ended) < len(engine.streams)

    def _write(self, result, stops: _Stops) -> None:
        """The frame to every output of its stream, or (the run aborted) to none: room first (a full file output
        makes the pipeline wait here), then ``write``, which never waits."""
        start = time.perf_counter()
        if stops.timed_out:  # the stop's grace ran out meanwhile: the run is over
            return
        try:
            self.sinks.room(result.stream)
        except Aborted:  # a second signal, or the grace ran out while the outputs took no frame
            self.stalled = self.stalled or stops.timed_out
            return
        self.sinks.write(result)
        self.engine.add_busy("sink", time.perf_counter() - start)
        if self.bar is not None:
            self.bar.update(1)

    def finalise(self) -> None:
        """Threads joined, every output finalised, then the summary completed and (--summary-json) written by its
        sink, last; Ctrl-C and SIGTERM meanwhile change nothing (every output is closed or discarded, each within
        its grace). Then the previous signal handlers are back (and a signal taken before the start delivered)."""
        engine = self.engine
        try:
            if self.bar is not None:
                self.bar.close()
            engine.close()
            if self.sinks is not None:  # after a stalled stop the outputs get a short grace: the process must end
                self.sinks.close(grace=2.0 if self.stalled else None, before_last=self._complete)
            else:
                self._complete({})
        finally:
            if self.signals is not None:
                self.signals.close(replay=self.cancelled)

    def _complete(self, written: Dict[str, List[str]]) -> None:
        """The summary, once the engine and every output but the summary have finished."""
        engine, summary = self.engine, self.summary
        for runner in self.sinks.runners if self.sinks is not None else []:  # a stream's own outputs, in order
            streams = runner.sink.streams
            if streams is not None and len(streams) == 1:
                summary.streams[next(iter(streams))].outputs += written.get(runner.sink.name, [])
        summary.dropped_by_outputs = self.sinks.dropped if self.sinks is not None else {}
        for stats in summary.streams:
            if summary.ended and stats.ended in ("stopped", "aborted"):  # the caller's reason (Ctrl-C)
                stats.ended = summary.ended
        summary.seconds = engine.stats.wall_s
        summary.engine = dict(engine.stats.to_dict(), detect=engine.options.detect, smooth=engine.options.smooth)
        summary.ended = summary.ended or _overall(summary.streams)
        contract = getattr(engine, "contract", None)
        summary.command, summary.detector = self.options.command, self.options.engine.detector
        if contract is not None:
            summary.model, summary.weights = contract.name, contract.weights or "not recorded"
            summary.random_weights = contract.random_weights

    def verdict(self, error: Optional[GoatPoseError]) -> RunSummary:
        summary, outputs = self.summary, ", ".join(self.summary.outputs) or "none"
        failures = list(self.sinks.failures) if self.sinks is not None else []
        if self.stalled:
            failures.append("the outputs took no frame within {:g} s of the stop (a stalled disk or pipe?): "
                            "stopped without the frames in flight".format(self.options.stop_grace))
        if self.engine.stats.stuck:
            failures.append("the {} stage{} did not stop (inside a native call?) and {} left behind".format(
                " and ".join(self.engine.stats.stuck), "s" if len(self.engine.stats.stuck) > 1 else "",
                "were" if len(self.engine.stats.stuck) > 1 else "was"))
        if error is None and self.timed_out:  # named now: the stages still at work once the engine closed
            error = StopTimeout(self.engine.stats.stuck, self.options.stop_grace)
        if error is not None:
            if not self.engine.started or (isinstance(error, SourceError) and not isinstance(error, StopTimeout)):
                raise error  # nothing was read: the error alone says it
            raise VideoRunError(summary, "; ".join([str(error)] + failures) + "; outputs finalised: " + outputs)
        bad = [(i, s) for i, s in enumerate(summary.streams) if s.ended in ("lost",) or s.ended.startswith("error")
               or (s.frames == 0 and s.ended == "end")]
        failures = [_bad_line(i, s, self.multi) for i, s in bad] + failures
        if failures:
            raise VideoRunError(summary, "; ".join(failures) + "; outputs finalised: " + outputs)
        return summary


def _overall(streams: List[StreamStats]) -> str:
    reasons = sorted(set(s.ended for s in streams))
    return reasons[0] if len(reasons) == 1 else ",".join(reasons)


def _bad_line(index: int, summary: StreamStats, multi: bool) -> str:
    name = "stream {} ({})".format(index, summary.source) if multi else summary.source
    if summary.frames == 0 and summary.ended in ("end", "lost"):
        return "no frame could be decoded from {} (a codec this OpenCV cannot decode?)".format(name)
    if summary.ended == "lost":
        return "{} stopped delivering frames after {} frames (camera or stream lost)".format(name, summary.frames)
    return "reading {} failed after {} frames ({})".format(name, summary.ended[7:])
