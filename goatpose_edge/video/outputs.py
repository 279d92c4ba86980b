"""Outputs of ``goatpose video`` that are never left half-written: each is written to a temporary file beside its
target and moved into place by ``close()``, which the video loop calls on every exit path (end, Ctrl-C, a lost
camera), so what is there is always a finalised, playable video and a JSONL complete to the last processed frame.

On a Jetson the overlay video goes through the hardware H.264 encoder (GStreamer ``nvv4l2h264enc``) when OpenCV has
GStreamer and the element exists; everywhere else through OpenCV's own writer (mp4v in .mp4, MJPG in .avi).
"""

import json
import os
import shutil
import subprocess
from typing import Optional

from goatpose_edge.fileio import Output, OutputPathError, apply_mode, check_io, refuse_if_input
from goatpose_edge.video.sinks import Sink

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class OutputError(OutputPathError):
    """An output that cannot be created."""


def _temporary(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, ".{}.partial-{}{}".format(stem, os.getpid(), ext))


def check_output_path(path: str, input_path: Optional[str] = None, option: str = "output") -> None:
    """The folder must exist and be writable, the output must not be a folder, nor the input (``fileio.check_io``)."""
    check_io([Output(path, option)], [("video", input_path)] if input_path else [])
    refuse_if_input(path, option)


def check_video_extension(path: str) -> None:
    if os.path.splitext(path)[1].lower() not in FOURCC:
        raise OutputError("cannot write {}: use one of {}".format(path, ", ".join(sorted(FOURCC))))


def hardware_encoder_available(cv2) -> bool:
    """OpenCV with GStreamer and the Jetson's nvv4l2h264enc element installed."""
    from goatpose_edge.video.sources import gstreamer_available

    if not gstreamer_available(cv2) or not shutil.which("gst-inspect-1.0"):
        return False
    try:
        return subprocess.run(["gst-inspect-1.0", "nvv4l2h264enc"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def hardware_pipeline(path: str) -> str:
    lower = path.lower()
    muxer = "qtmux" if lower.endswith((".mp4", ".mov", ".m4v")) else "avimux" if lower.endswith(".avi") else \
        "matroskamux"
    return ("appsrc ! video/x-raw, format=BGR ! queue ! videoconvert ! video/x-raw, format=BGRx ! nvvidconv ! "
            "nvv4l2h264enc ! h264parse ! {} ! filesink location=\"{}\"".format(muxer, path.replace('"', '\\"')))


class VideoSink:
    """Overlay video with the input's size and fps. ``encoder``: "auto" (hardware on a Jetson, else OpenCV),
    "opencv" or "gstreamer"."""

    def __init__(self, path: str, fps: float, size, encoder: str = "auto"):
        import cv2

        check_video_extension(path)
        ext = os.path.splitext(path)[1].lower()
        self.path, self.tmp = path, _temporary(path)
        self.size = (int(size[0]), int(size[1]))  # (width, height)
        fps = fps if fps and 0 < fps < 1000 else 30.0
        use_gst = encoder == "gstreamer" or (encoder == "auto" and hardware_encoder_available(cv2))
        if use_gst:
            self.writer = cv2.VideoWriter(hardware_pipeline(self.tmp), cv2.CAP_GSTREAMER, 0, fps, self.size)
            self.encoder = "gstreamer nvv4l2h264enc"
        else:
            self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*FOURCC[ext]), fps, self.size)
            self.encoder = "opencv " + FOURCC[ext]
        if not self.writer.isOpened():
            self._discard()
            raise OutputError("cannot open a video writer for {} ({})".format(path, self.encoder))
        self.frames = 0

    def write(self, frame) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:  # a source that changed size mid-stream
            import cv2

            frame = cv2.resize(frame, self.size)
        self.writer.write(frame)
        self.frames += 1

    def _discard(self) -> None:
        if os.path.exists(self.tmp):
            os.remove(self.tmp)

    def close(self) -> Optional[str]:
        """Finalise (container trailer written), check that the container holds what was written (a full disk
        truncates it without an error from OpenCV) and move into place; None when no frame was written."""
        self.writer.release()
        if self.frames == 0 or not os.path.exists(self.tmp):
            self._discard()
            return None
        readable = _frames_in(self.tmp) if self.encoder.startswith("opencv") else None
        if readable is not None and readable < self.frames:
            self._discard()
            raise OutputError("{}: the finished video holds {} of the {} frames written (disk full?): removed".format(
                self.path, readable, self.frames))
        apply_mode(self.tmp, self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        try:
            self.writer.release()
        finally:
            self._discard()


class JsonlSink:
    """One JSON object per processed frame, flushed as it is written."""

    def __init__(self, path: str):
        self.path, self.tmp = path, _temporary(path)
        try:
            self.file = open(self.tmp, "w")
        except OSError as exc:
            raise OutputError("cannot write {}: {}".format(path, exc.strerror)) from exc
        self.lines = 0

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()
        self.lines += 1

    def close(self) -> Optional[str]:
        """Move into place; None (and an existing file at the path kept as it was) when no frame was written."""
        self.file.close()
        if self.lines == 0:
            os.remove(self.tmp)
            return None
        apply_mode(self.tmp, self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def _frames_in(path: str) -> Optional[int]:
    """The frames a finished video's container says it holds: 0 when it cannot be opened, None when it does not say
    (a GStreamer-muxed file whose header OpenCV cannot read)."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return 0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else None
    finally:
        capture.release()


class OverlayVideo(Sink):
    """``-o``: a stream's overlay video, opened on its first frame with the frame's size and the source's fps
    (files wait: nothing dropped)."""

    wants = "overlay"
    policy = "wait"

    def __init__(self, path: str, stream: int, fps: Optional[float], encoder: str = "auto"):
        self.path, self.fps, self.encoder = path, fps, encoder
        self.name = "-o {}".format(path)
        self.streams = {stream}
        self.video = None  # type: Optional[VideoSink]

    def write(self, frame) -> None:
        image = frame.overlay
        if self.video is None:
            self.video = VideoSink(self.path, self.fps, (image.shape[1], image.shape[0]), self.encoder)
        self.video.write(image)

    def end(self, stream, stats):
        if self.video is not None:
            stats.encoder = self.video.encoder
        return self.close()

    def close(self):
        video, self.video = self.video, None
        written = video.close() if video is not None else None
        return [written] if written else []

    def discard(self) -> None:
        video, self.video = self.video, None
        if video is not None:
            video.discard()


class JsonlFile(Sink):
    """``--jsonl``: a stream's records, one JSON line per frame, flushed as written (files wait: nothing dropped)."""

    wants = "record"
    policy = "wait"

    def __init__(self, path: str, stream: int, smooth: bool = False):
        self.name = "--jsonl {}".format(path)
        self.stream, self.smooth = stream, smooth
        self.streams = {stream}
        self.file = JsonlSink(path)  # opened now: a path that cannot be written fails before the first frame
        self.run = None

    def open(self, run) -> None:
        self.run = run

    def write(self, frame) -> None:
        if self.file.lines == 0 and self.run is not None:  # the header: what follows and how to read it
            from goatpose_edge.video.results import jsonl_header

            info = self.run.streams[self.stream]
            height, width = frame.result.image.shape[:2]
            self.file.write(jsonl_header(self.stream, info.source, info.live, info.fps, (width, height),
                                         self.run.contract, self.run.detector, self.smooth))
        self.file.write(frame.record)

    def end(self, stream, stats):
        return self.close()

    def close(self):
        file, self.file = self.file, None
        written = file.close() if file is not None else None
        return [written] if written else []

    def discard(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            file.discard()


class Window(Sink):
    """``--show``: a window per stream with its overlay (a display keeps the newest frame, the others are dropped);
    q or Esc calls ``on_quit`` (the run stops). Every HighGUI call is made in this sink's one thread."""

    name = "--show"
    wants = "overlay"
    policy = "latest"

    def __init__(self, streams: int, on_quit):
        self.titles = ["goatpose {}".format(i) if streams > 1 else "goatpose" for i in range(streams)]
        self.on_quit = on_quit
        self.opened = False

    def write(self, frame) -> None:
        import cv2

        self.opened = True
        cv2.imshow(self.titles[frame.result.stream], frame.overlay)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.on_quit()

    def close(self):
        if self.opened:
            import cv2

            cv2.destroyAllWindows()
        return []


class SummaryFile(Sink):
    """The run's summary: samples this process's resident memory every ``every`` frames, and when the run ends
    (closed after the other outputs, so it names what they wrote) completes ``summary`` (a ``RunSummary``) and,
    with a ``path`` (``--summary-json``), writes it as JSON."""

    name = "--summary-json"
    wants = "record"
    policy = "wait"  # counts every frame (its write is a counter and, every ``every`` frames, one /proc read)
    last = True

    def __init__(self, summary, path: Optional[str] = None, every: int = 50):
        self.summary, self.path, self.every = summary, path, every
        if path:
            self.name = "--summary-json {}".format(path)
        self.frames = 0

    def write(self, frame) -> None:
        self.frames += 1
        if self.frames % self.every == 0:
            self.summary.rss_mb.append([self.frames, resident_mb()])

    def close(self):
        self.summary.rss_mb.append([self.frames, resident_mb()])
        if not self.path:
            return []
        import json

        from goatpose_edge.fileio import atomic_output

        with atomic_output(self.path) as tmp_path:
            with open(tmp_path, "w") as f:
                f.write(json.dumps(self.summary.to_dict(), indent=2) + "\n")
        return [self.path]


def resident_mb() -> Optional[float]:
    """This process's resident memory in MB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20, 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
