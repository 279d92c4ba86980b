"""What ``goatpose video SOURCE`` can read, and how each is opened with OpenCV.

    path/to/file.mp4        a video file (never drops frames; frame count and fps from the container when known)
    0, 1, ...               a camera index (V4L2 on Linux)
    rtsp://..., http(s)://  a network stream
    csi://0                 a Jetson CSI camera through nvarguscamerasrc (width/height/fps from ``CsiOptions``)
    "... ! appsink"         a raw GStreamer pipeline (must end in an appsink delivering BGR)

Live sources (everything but files) are read "latest frame wins" by the capture thread.
"""

import os
import re
from dataclasses import dataclass
from typing import Optional

from goatpose_edge.errors import GoatPoseError


#: file suffixes named as examples when a folder is given as the source
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mjpeg")


class SourceError(GoatPoseError):
    """A source that cannot be opened or read."""


@dataclass
class CsiOptions:
    width: int = 1280
    height: int = 720
    fps: int = 30
    flip_method: int = 0  # nvvidconv flip-method: 0 none, 2 rotate 180, ...


@dataclass
class SourceSpec:
    kind: str  # file | camera | url | csi | gstreamer
    target: str  # path, index, URL or pipeline
    live: bool

    def describe(self) -> str:
        return "{} {}".format(self.kind, self.target)


def csi_pipeline(sensor_id: int, options: CsiOptions) -> str:
    """The nvarguscamerasrc pipeline for a Jetson CSI camera, ending in a BGR appsink that keeps only the newest
    frame (the capture thread drops stale frames itself too)."""
    return ("nvarguscamerasrc sensor-id={sid} ! video/x-raw(memory:NVMM), width=(int){w}, height=(int){h}, "
            "format=(string)NV12, framerate=(fraction){fps}/1 ! nvvidconv flip-method={flip} ! "
            "video/x-raw, width=(int){w}, height=(int){h}, format=(string)BGRx ! videoconvert ! "
            "video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1").format(
                sid=sensor_id, w=options.width, h=options.height, fps=options.fps, flip=options.flip_method)


def folder_message(path: str) -> str:
    """What to say when a folder is given as the video source: name a video file in it when there is one."""
    try:
        videos = sorted(name for name in os.listdir(path) if name.lower().endswith(VIDEO_SUFFIXES))
    except OSError:
        videos = []
    if videos:
        example = "e.g. {}; the folder holds {} video file{}".format(os.path.join(path, videos[0]), len(videos),
                                                                   "s" if len(videos) > 1 else "")
    else:
        example = "e.g. {}".format(os.path.join(path, "clip.mp4"))
    return ("video source {} is a folder, not a video: give one video file ({}), a camera index, an rtsp:// or "
            "http:// URL, csi://N or a GStreamer pipeline".format(path, example))


def normalise_source(spec: str) -> str:
    """The one spelling of a source argument that the opener and the output guards use: surrounding white space
    (a trailing space, a newline, a CRLF list's carriage return) is not part of a file name here."""
    return spec.strip()


def source_file(spec: str) -> Optional[str]:
    """The existing file a source argument names (as ``parse_source`` opens it), else None."""
    path = normalise_source(spec)
    return path if path and os.path.isfile(path) else None


def parse_source(spec: str, csi: Optional[CsiOptions] = None) -> SourceSpec:
    """Classify ``spec`` (see the module docstring); a file must exist (a folder is refused, naming a video in it)."""
    spec = normalise_source(spec)
    if not spec:
        raise SourceError("empty video source")
    if re.fullmatch(r"\d+", spec):
        return SourceSpec("camera", spec, True)
    match = re.fullmatch(r"csi://(\d+)", spec)
    if match:
        return SourceSpec("csi", csi_pipeline(int(match.group(1)), csi or CsiOptions()), True)
    if spec.startswith("csi://"):
        raise SourceError("bad CSI source {!r}: use csi://N with the sensor id N (0, 1, ...)".format(spec))
    if re.match(r"(rtsp|rtsps|rtmp|http|https|udp|tcp)://", spec, re.IGNORECASE):
        return SourceSpec("url", spec, True)
    if "!" in spec:
        if "appsink" not in spec:
            raise SourceError("a GStreamer pipeline source must end in an appsink (… ! videoconvert ! "
                              "video/x-raw, format=BGR ! appsink)")
        return SourceSpec("gstreamer", spec, True)
    if os.path.isdir(spec):
        raise SourceError(folder_message(spec))
    if os.path.exists(spec) and not os.path.isfile(spec):
        from goatpose_edge.fileio import not_a_file

        raise SourceError("video source {} {}: give a video file".format(spec, not_a_file(spec) or
                                                                         "is not a regular file"))
    if not os.path.isfile(spec):
        raise SourceError("video not found: {} (a file, a camera index, an rtsp:// or http:// URL, csi://N or a "
                          "GStreamer pipeline)".format(spec))
    return SourceSpec("file", spec, False)


def gstreamer_available(cv2) -> bool:
    info = cv2.getBuildInformation()
    match = re.search(r"GStreamer:\s*(\w+)", info)
    return bool(match) and match.group(1).upper() == "YES"


def open_capture(source: SourceSpec):
    """An opened ``cv2.VideoCapture`` for ``source``, or one ``SourceError`` line that says what to check."""
    import cv2

    if source.kind == "camera":
        if int(source.target) >= 2 ** 31:
            raise SourceError("camera index {} is out of range: cameras are numbered 0, 1, ... (ls /dev/video*)".format(
                source.target))
        capture = cv2.VideoCapture(int(source.target))
    elif source.kind in ("csi", "gstreamer"):
        if not gstreamer_available(cv2):
            raise SourceError("this OpenCV has no GStreamer support, needed for {} sources: on a Jetson use the "
                              "system OpenCV (python3-opencv from JetPack), not a pip wheel".format(source.kind))
        capture = cv2.VideoCapture(source.target, cv2.CAP_GSTREAMER)
    else:
        capture = cv2.VideoCapture(source.target)
    if not capture.isOpened():
        capture.release()
        hints = {"file": "unknown container or a codec this OpenCV cannot decode",
                 "camera": "no such camera, or it is in use (check /dev/video*)",
                 "url": "unreachable, or a stream OpenCV's backend cannot read",
                 "csi": "is the camera connected and nvargus-daemon running? (sudo systemctl restart nvargus-daemon)",
                 "gstreamer": "the pipeline did not start; test it with gst-launch-1.0"}
        raise SourceError("cannot open {} {}: {}".format(source.kind, source.target if source.kind != "csi" else
                                                         "camera", hints[source.kind]))
    return capture
