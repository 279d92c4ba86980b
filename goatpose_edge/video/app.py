"""``goatpose video``: source -> capture thread -> detect + pose (batched) -> track -> overlay video, JSONL, window.

    summary = run_video(VideoOptions(source="in.mp4", pose="export/goatpose-bl_256x192.onnx", output="out.mp4"))

Every exit path (the end of a file, ``max_frames``, Ctrl-C, ``q`` in the window, a lost camera, an error) finalises
the outputs first. Ctrl-C and ``q`` are a normal stop (exit 0); a live source that stops delivering frames and a
file whose first frame cannot be decoded are errors (exit 1), raised after the outputs are finalised.
JSONL keypoints are clamped to the frame (a person cut by the border otherwise gets points outside the image).
"""

import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.video.capture import FrameReader
from goatpose_edge.video.outputs import JsonlSink, VideoSink, check_output_path, check_video_extension
from goatpose_edge.video.sources import CsiOptions, SourceError, open_capture, parse_source
from goatpose_edge.video.tracking import IoUTracker

#: resident memory is sampled every this many frames (the summary shows whether it stays flat)
RSS_EVERY = 50


@dataclass
class VideoOptions:
    source: str
    pose: str
    detector: str = "hog"
    detect_every: int = 1
    flip: bool = False
    output: Optional[str] = None
    jsonl: Optional[str] = None
    show: bool = False
    max_frames: Optional[int] = None
    max_persons: Optional[int] = None
    threads: Optional[int] = None
    encoder: str = "auto"  # auto | opencv | gstreamer
    queue_size: int = 4
    progress: bool = True
    csi: CsiOptions = field(default_factory=CsiOptions)


@dataclass
class VideoSummary:
    source: str
    frames: int = 0
    seconds: float = 0.0
    persons: int = 0
    dropped: int = 0
    ended: str = ""  # end | stopped | interrupted | lost | error: ...
    frame_count: Optional[int] = None  # what the container reports (None: unknown)
    outputs: List[str] = field(default_factory=list)
    encoder: str = ""
    rss_mb: List[List[float]] = field(default_factory=list)  # [[frame, resident MB], ...]

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


def run_video(options: VideoOptions, log: Callable[[str], None] = lambda line: None) -> VideoSummary:
    import cv2

    from goatpose_edge.detection import make_detector
    from goatpose_edge.detection.base import Detections
    from goatpose_edge.draw import draw_persons
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import open_runner

    if options.detect_every < 1 or (options.max_frames is not None and options.max_frames < 1) or (
            options.max_persons is not None and options.max_persons < 1):
        raise GoatPoseError("--detect-every, --max-frames and --max-persons must be >= 1")
    if options.show:  # before any source, model or output file is opened
        check_display(cv2)
    source = parse_source(options.source, options.csi)
    input_path = source.target if source.kind == "file" else None
    for path in (options.output, options.jsonl):
        if path:
            check_output_path(path, input_path)
    if options.output:
        check_video_extension(options.output)
    if options.output and options.jsonl and os.path.abspath(options.output) == os.path.abspath(options.jsonl):
        raise GoatPoseError("-o and --jsonl name the same file")
    if not os.path.isfile(options.pose):
        raise GoatPoseError("artefact not found: {}".format(options.pose))
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if source.kind == "file" else 0
    summary = VideoSummary(source.describe() if source.kind != "csi" else options.source,
                           frame_count=count if count > 0 else None)
    video = jsonl = None
    reader = FrameReader(capture, source.live, options.queue_size, options.max_frames, fps)
    completed = False
    try:
        with open_runner(options.pose, options.threads) as runner, \
                make_detector(options.detector, every=options.detect_every) as detector:
            estimator = TopDownPoseEstimator(detector, runner, flip=options.flip)
            tracker = IoUTracker()
            if options.jsonl:
                jsonl = JsonlSink(options.jsonl)
            total = min(summary.frame_count, options.max_frames) if summary.frame_count and options.max_frames else (
                summary.frame_count or options.max_frames)
            bar = _progress(total, options.progress)
            log("{}: {} -> {}{}".format(summary.source, os.path.basename(options.pose), options.output or "-",
                                        ", " + options.jsonl if options.jsonl else ""))
            reader.start()
            started = time.perf_counter()
            try:
                for frame in reader:
                    image = frame.image
                    detections = detector.detect(image)
                    if options.max_persons is not None:
                        detections = Detections(detections.boxes[:options.max_persons],
                                                detections.scores[:options.max_persons])
                    persons = estimator.estimate(image, detections) if image.size else []
                    if hasattr(detector, "observe"):
                        detector.observe(persons)
                    ids = tracker.update([p.box for p in persons])
                    summary.frames += 1
                    summary.persons += len(persons)
                    summary.seconds = time.perf_counter() - started
                    if jsonl is not None:
                        jsonl.write(frame_record(frame.index, frame.timestamp, persons, ids, image.shape))
                    if options.output or options.show:
                        draw_persons(image, persons, runner.contract.skeleton, fps=summary.fps, ids=ids)
                    if options.output:
                        if video is None:
                            video = VideoSink(options.output, fps, (image.shape[1], image.shape[0]), options.encoder)
                            summary.encoder = video.encoder
                        video.write(image)
                    if options.show:
                        cv2.imshow("goatpose", image)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            summary.ended = "stopped"
                            break
                    if summary.frames % RSS_EVERY == 0:
                        summary.rss_mb.append([summary.frames, resident_mb()])
                    if bar is not None:
                        bar.update(1)
                    if options.max_frames is not None and summary.frames >= options.max_frames:
                        summary.ended = "stopped"
                        break
            except KeyboardInterrupt:
                summary.ended = "interrupted"
            finally:
                if bar is not None:
                    bar.close()
        completed = True
    finally:
        failures = []
        for step in ([reader.close] + [s.close for s in (video, jsonl) if s is not None]
                     + ([cv2.destroyAllWindows] if options.show else [])):
            try:  # every output is finalised even when another one fails
                written = step()
                if isinstance(written, str):
                    summary.outputs.append(written)
            except Exception as exc:  # noqa: BLE001 - reported after the others are closed
                failures.append(exc)
        summary.dropped = reader.dropped
        summary.ended = summary.ended or reader.ended
        summary.rss_mb.append([summary.frames, resident_mb()])
        if failures and completed:
            raise GoatPoseError("finalising the outputs failed: {}".format(failures[0])) from failures[0]
    if summary.frames == 0 and summary.ended in ("end", "lost"):
        raise VideoRunError(summary, "no frame could be decoded from {} (a codec this OpenCV cannot decode?)".format(
            summary.source))
    if summary.ended == "lost":
        raise VideoRunError(summary, "{} stopped delivering frames after {} frames (camera or stream lost); outputs "
                          "finalised: {}".format(summary.source, summary.frames, ", ".join(summary.outputs) or "none"))
    if summary.ended.startswith("error"):
        raise VideoRunError(summary, "reading {} failed after {} frames ({}); outputs finalised: {}".format(
            summary.source, summary.frames, summary.ended[7:], ", ".join(summary.outputs) or "none"))
    return summary
