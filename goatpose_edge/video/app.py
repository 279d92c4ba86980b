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
"""

import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, List, Optional

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.signals import interrupts_deferred
from goatpose_edge.video.engine import StreamEnd, StreamEngine, StreamOptions
from goatpose_edge.video.outputs import JsonlSink, VideoSink, check_output_path, check_video_extension
from goatpose_edge.video.sources import SourceError

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


@dataclass
class VideoSummary:
    source: str
    frames: int = 0
    seconds: float = 0.0
    persons: int = 0
    dropped: int = 0
    ended: str = ""  # end | stopped | interrupted | lost | error: ... | aborted
    frame_count: Optional[int] = None  # what the container reports (None: unknown)
    outputs: List[str] = field(default_factory=list)
    encoder: str = ""
    detector_runs: int = 0
    frames_in: int = 0  # frames admitted into the pipeline (= frames unless the run failed)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        short = (" (the container claims {} frames; that is all OpenCV could decode)".format(self.frame_count)
                 if self.ended == "end" and self.frame_count and self.frames < self.frame_count else "")
        return ("{} frames in {:.1f} s ({:.2f} fps), {:.1f} persons/frame, {} dropped, ended: {}{}{}".format(
            self.frames, self.seconds, self.fps, self.persons / max(self.frames, 1), self.dropped, self.ended, short,
            "".join("; wrote {}".format(p) for p in self.outputs)))

    def to_dict(self) -> dict:
        record = asdict(self)
        record["fps"] = round(self.fps, 3)
        return record


@dataclass
class RunSummary:
    """A whole run: one ``VideoSummary`` per stream, the engine's figures and the total."""

    streams: List[VideoSummary]
    seconds: float = 0.0
    ended: str = ""  # how the run as a whole ended (the first stream's reason when all agree)
    rss_mb: List[List[float]] = field(default_factory=list)  # [[frames so far, resident MB], ...]
    engine: dict = field(default_factory=dict)  # workers, busy time and utilisation per stage, detector runs

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
        runs = sum(s.detector_runs for s in self.streams)
        lines.append("pose {:.2f} fps, detector {:.2f} runs/s ({} runs for {} frames), {} pose worker{}".format(
            self.fps, runs / self.seconds if self.seconds else 0.0, runs, self.frames, self.engine.get("workers", 0),
            "s" if self.engine.get("workers", 0) != 1 else ""))
        return lines

    def to_dict(self) -> dict:
        return {"streams": [s.to_dict() for s in self.streams], "frames": self.frames, "persons": self.persons,
                "seconds": round(self.seconds, 3), "fps": round(self.fps, 3), "ended": self.ended,
                "outputs": self.outputs, "rss_mb": self.rss_mb, "engine": self.engine}


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


class VideoRunError(SourceError):
    """A run that ended badly after its outputs were finalised; ``summary`` says how far it got."""

    def __init__(self, summary: VideoSummary, message: str):
        super().__init__(message)
        self.summary = summary


def resident_mb() -> Optional[float]:
    """This process's resident memory in MB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20, 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def frame_record(index: int, timestamp: float, persons, ids, shape) -> dict:
    """One JSONL line: frame index, timestamp (s), persons with track id, box, scores and 17 clamped keypoints."""
    people = [dict(person.to_dict(clamp_to=shape), id=int(ident)) for person, ident in zip(persons, ids)]
    return {"frame": index, "time": round(float(timestamp), 3), "persons": people}


def _progress(total: Optional[int], enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="frame", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def check_display(cv2=None, platform: Optional[str] = None, environ=None) -> None:
    """One ``GoatPoseError`` line when ``--show`` cannot open a window: on Linux with neither DISPLAY nor
    WAYLAND_DISPLAY set (OpenCV's Qt/GTK backend would abort the process, leaving partial outputs), or with an
    OpenCV built without a GUI (opencv-python-headless). Windows and macOS always have a display: not checked."""
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


class _StreamSinks:
    """The outputs of one stream: overlay video (opened on its first frame), JSONL, window."""

    def __init__(self, index: int, output: Optional[str], jsonl: Optional[str], show: bool, encoder: str,
                 fps: Optional[float], multi: bool):
        self.index, self.output, self.show, self.encoder, self.fps = index, output, show, encoder, fps
        self.window = "goatpose {}".format(index) if multi else "goatpose"
        self.video = None  # type: Optional[VideoSink]
        self.jsonl = JsonlSink(jsonl) if jsonl else None
        self.closed = False

    def write(self, result, contract, fps: float, raw_keypoints: bool) -> bool:
        """Write one frame; False when the window asked to stop (q or Esc)."""
        from goatpose_edge.draw import draw_persons

        image = result.image
        if self.jsonl is not None:
            record = frame_record(result.index, result.timestamp, result.persons, result.ids, image.shape)
            if raw_keypoints and result.raw_keypoints is not None:
                for entry, person, raw in zip(record["persons"], result.persons, result.raw_keypoints):
                    entry["raw_keypoints"] = replace(person, keypoints=raw).to_dict(clamp_to=image.shape)["keypoints"]
            self.jsonl.write(record)
        if self.output or self.show:
            draw_persons(image, result.persons, contract.skeleton, fps=fps, ids=result.ids)
        if self.output:
            if self.video is None:
                self.video = VideoSink(self.output, self.fps, (image.shape[1], image.shape[0]), self.encoder)
            self.video.write(image)
        if self.show:
            import cv2

            cv2.imshow(self.window, image)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                return False
        return True

    def close(self, summary: VideoSummary, failures: list) -> None:
        if self.closed:
            return
        self.closed = True
        for sink in (self.video, self.jsonl):
            if sink is None:
                continue
            try:  # every output is finalised even when another one fails
                written = sink.close()
                if written:
                    summary.outputs.append(written)
            except Exception as exc:  # noqa: BLE001 - reported after the others are closed
                failures.append(exc)
        if self.video is not None:
            summary.encoder = self.video.encoder


def check_video_options(options: VideoOptions) -> List[tuple]:
    """Everything checkable before a source or model opens -> [(output, jsonl)] per stream."""
    import cv2

    if not options.sources:
        raise GoatPoseError("give at least one video source")
    if options.show:  # before any source, model or output file is opened
        check_display(cv2)
    options.engine.check()
    count = len(options.sources)
    outputs = expand_outputs(options.output, count, "-o")
    jsonls = expand_outputs(options.jsonl, count, "--jsonl")
    inputs = [s for s in options.sources if os.path.isfile(s)]
    seen = {}
    for option, paths in (("-o", outputs), ("--jsonl", jsonls)):
        for index, path in enumerate(paths):
            if not path:
                continue
            key = os.path.abspath(path)
            if key in seen:
                raise GoatPoseError("{} of stream {} and {} name the same file {}: give each stream its own "
                                    "output (use {})".format(option, index, seen[key], path, STREAM_PLACEHOLDER))
            seen[key] = "{} of stream {}".format(option, index)
            for source in inputs:
                check_output_path(path, source)
            if not inputs:
                check_output_path(path)
            if option == "-o":
                check_video_extension(path)
    if not os.path.isfile(options.engine.pose):
        raise GoatPoseError("artefact not found: {}".format(options.engine.pose))
    return list(zip(outputs, jsonls))


def run_video(options: VideoOptions, log: Callable[[str], None] = lambda line: None) -> RunSummary:
    """Pose on every source of ``options`` through one ``StreamEngine``; outputs per stream, finalised on every
    exit path. Raises ``VideoRunError`` (with the summary) when a stream was lost or failed, or a stage failed."""
    run = _VideoRun(options, log)  # every source opened, or none
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

    def __init__(self, options: VideoOptions, log: Callable[[str], None]):
        self.targets = check_video_options(options)
        self.options, self.log = options, log
        self.multi = len(options.sources) > 1
        self.engine = StreamEngine(options.sources, options.engine)
        self.summary = RunSummary([VideoSummary(s.stats.source, frame_count=s.stats.frame_count)
                                   for s in self.engine.streams])
        self.sinks = []  # type: List[_StreamSinks]
        self.failures = []  # type: list
        self.bar = None
        self.stopping = ""

    def open_outputs(self) -> None:
        """Runners and detectors loaded, a sink set per stream, the progress bar sized to the frames expected."""
        engine, options = self.engine, self.options
        engine.open()
        for stream, (output, jsonl) in zip(engine.streams, self.targets):
            self.sinks.append(_StreamSinks(stream.index, output, jsonl, options.show, options.encoder,
                                           stream.stats.fps_nominal, self.multi))
        counts = [s.stats.frame_count for s in engine.streams]
        limit = options.engine.max_frames
        total = (sum(min(c, limit) if limit else c for c in counts) if all(counts) else
                 (limit * len(counts) if limit else None))
        self.bar = _progress(total, options.progress)

    def announce(self) -> None:
        for stream, (output, jsonl) in zip(self.engine.streams, self.targets):
            self.log("{}{}: {} -> {}{}".format("stream {} ".format(stream.index) if self.multi else "",
                                               stream.stats.source, os.path.basename(self.options.engine.pose),
                                               output or "-", ", " + jsonl if jsonl else ""))

    def deliver(self) -> None:
        """Every event to its stream's sinks until the engine is done; Ctrl-C / SIGTERM drain the frames in flight
        (twice, or the sequential schedule: stop at once)."""
        engine = self.engine
        engine.start()
        frames = 0
        while True:
            try:
                event = engine.next_event()
                if event is None:
                    break
                if isinstance(event, StreamEnd):
                    _finish_stream(self.summary.streams[event.stream], event.stats, self.sinks[event.stream],
                                   self.failures)
                    continue
                keep_going = self._write(event)
                frames += 1
                if frames % RSS_EVERY == 0:
                    self.summary.rss_mb.append([frames, resident_mb()])
                if self.bar is not None:
                    self.bar.update(1)
                if not keep_going and not self.stopping:
                    self.stopping = "stopped"
                    engine.stop()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the frames in flight still come out; twice: now
                if self.stopping == "interrupted" or self.options.engine.sequential:
                    self.stopping = "interrupted"
                    break
                self.stopping = "interrupted"
                engine.stop()
        self.summary.ended = self.stopping

    def _write(self, event) -> bool:
        """One frame to every output of its stream, or to none (interrupts wait); False when a window asks to stop."""
        stream_summary = self.summary.streams[event.stream]
        start = time.perf_counter()
        fps = (stream_summary.frames + 1) / max(self.engine.elapsed, 1e-9)
        with interrupts_deferred():
            keep_going = self.sinks[event.stream].write(event, self.engine.contract, fps, self.options.raw_keypoints)
            stream_summary.frames += 1
            stream_summary.persons += len(event.persons)
        self.engine.add_busy("sink", time.perf_counter() - start)
        return keep_going

    def finalise(self) -> None:
        """Threads joined, every stream's outputs finalised, windows closed, the summary completed."""
        import cv2

        engine, summary = self.engine, self.summary
        if self.bar is not None:
            self.bar.close()
        engine.close()
        for stream, stream_summary, stream_sinks in zip(engine.streams, summary.streams, self.sinks):
            _finish_stream(stream_summary, stream.stats, stream_sinks, self.failures)
        for stream_summary in summary.streams:
            if stopping_reason(summary.ended, stream_summary.ended):
                stream_summary.ended = summary.ended
        if self.options.show:
            try:
                cv2.destroyAllWindows()
            except Exception:  # noqa: BLE001
                pass
        summary.seconds = engine.stats.wall_s
        summary.engine = engine_record(engine)
        summary.rss_mb.append([summary.frames, resident_mb()])
        summary.ended = summary.ended or _overall(summary.streams)

    def verdict(self, error: Optional[GoatPoseError]) -> RunSummary:
        summary, outputs = self.summary, ", ".join(self.summary.outputs) or "none"
        if error is not None:
            if isinstance(error, SourceError) or not self.engine.runners:
                raise error
            raise VideoRunError(summary, "{}; outputs finalised: {}".format(error, outputs))
        if self.failures:
            raise GoatPoseError("finalising the outputs failed: {}".format(self.failures[0])) from self.failures[0]
        bad = [(i, s) for i, s in enumerate(summary.streams) if s.ended in ("lost",) or s.ended.startswith("error")
               or (s.frames == 0 and s.ended == "end")]
        if bad:
            raise VideoRunError(summary, "; ".join(_bad_line(i, s, self.multi) for i, s in bad)
                                + "; outputs finalised: " + outputs)
        return summary


def stopping_reason(run_ended: str, stream_ended: str) -> bool:
    """A stream the caller stopped (Ctrl-C, q) reports the caller's reason instead of the engine's "stopped"."""
    return bool(run_ended) and stream_ended in ("stopped", "aborted")


def _overall(streams: List[VideoSummary]) -> str:
    reasons = sorted(set(s.ended for s in streams))
    return reasons[0] if len(reasons) == 1 else ",".join(reasons)


def _finish_stream(summary: VideoSummary, stats, sinks: "_StreamSinks", failures: list) -> None:
    if sinks.closed:
        return
    sinks.close(summary, failures)
    summary.ended = stats.ended
    summary.dropped = stats.dropped
    summary.seconds = stats.seconds
    summary.detector_runs = stats.detector_runs
    summary.frames_in = stats.frames_in


def _bad_line(index: int, summary: VideoSummary, multi: bool) -> str:
    name = "stream {} ({})".format(index, summary.source) if multi else summary.source
    if summary.frames == 0 and summary.ended in ("end", "lost"):
        return "no frame could be decoded from {} (a codec this OpenCV cannot decode?)".format(name)
    if summary.ended == "lost":
        return "{} stopped delivering frames after {} frames (camera or stream lost)".format(name, summary.frames)
    return "reading {} failed after {} frames ({})".format(name, summary.frames, summary.ended[7:])


def engine_record(engine: StreamEngine) -> dict:
    """The engine's figures for the summary: workers, busy seconds and utilisation per stage."""
    return dict(engine.stats.to_dict(), detect=engine.options.detect, smooth=engine.options.smooth)
