"""What the streaming engine hands out, and its figures, each kept once.

``FrameResult``: one frame's poses (``record()`` is the one record schema: the JSONL line of ``goatpose video``, and
what a network output carries). ``StreamEnd``: a stream's last event, with its ``StreamStats``. ``EngineStats``:
workers, calls and busy time per stage for the whole run. ``STAGES`` is the one list of stages, in pipeline order,
that the figures and the bench report use.

Each ``StreamStats`` field has one writer: ``frames_in``, ``dropped`` and ``ended`` the stream's feed (``dropped``
copied from the capture as each frame is admitted, and once more when it stops), ``detector_runs`` the crop
stage (which sees every detection), ``followed`` and ``followed_ended`` the post stage, ``frames``, ``persons`` and
``seconds`` the caller's thread as it takes each result (so they count what reached the outputs), ``outputs`` and
``encoder`` the outputs as they are finalised. A ``StreamEnd`` is handed out after every writer of its stream is done.
"""

from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional

import numpy as np

#: stages in pipeline order, as reported in the figures ("sink": the caller's outputs)
STAGES = ("capture", "detect", "crop", "pose", "post", "sink")

#: the JSONL format of ``goatpose video --jsonl``: a header line with this ``format``, then one record per frame
JSONL_FORMAT = "goatpose-video-jsonl/1"

#: what each field of a frame record means (the header carries it, docs/video.md documents it)
RECORD_FIELDS = {
    "frame": "the frame's position in the source, from 0 (frames a live source dropped included)",
    "time": "the frame's time in seconds (see the header's time)",
    "persons": "one per person: id, box, score, box_score, keypoints",
    "id": "the person's track id in this stream (stable while followed)",
    "box": "[x, y, w, h] in frame pixels: the detector's box, or the followed box it was posed on",
    "box_score": "the detector's confidence in the box (0..1; a followed person keeps its detection's)",
    "score": "the pose's confidence: box_score x the mean of the keypoint scores above 0.2 (HRNet's rescoring)",
    "keypoints": "[x, y, score] per keypoint in keypoint_names order: frame pixels clamped to the frame, score 0..1",
    "raw_keypoints": "with --smooth --raw-keypoints: the keypoints before smoothing",
}


def jsonl_header(stream: int, source: str, live: bool, fps, size, contract, detector: str, smooth: bool) -> dict:
    """The first line of a stream's JSONL: what the records that follow are and how to read them."""
    return {"format": JSONL_FORMAT, "stream": stream, "source": source, "live": live, "fps": fps,
            "size": list(size), "model": contract.name, "weights": contract.weights or "not recorded",
            "random_weights": contract.random_weights, "detector": detector, "smoothed": smooth,
            "keypoint_names": list(contract.keypoint_names), "skeleton": [list(e) for e in contract.skeleton],
            "time": "Unix time (seconds) when the frame was read" if live else
            "seconds into the video: frame index / the container's fps", "fields": RECORD_FIELDS}


def read_jsonl(path: str):
    """(header or None for an older file, [frame records]) of a ``goatpose video --jsonl`` file."""
    import json

    header, records = None, []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            if "format" in record and "frame" not in record:
                header = record
            else:
                records.append(record)
    return header, records


@dataclass
class FrameResult:
    """One frame's poses. ``persons[i].keypoints`` are smoothed when smoothing is on; ``raw_keypoints[i]`` are the
    decoder's (None when not smoothing)."""

    stream: int
    index: int  # position in the source (frames a live source dropped included)
    timestamp: float  # seconds (see ``capture.Frame``)
    image: np.ndarray  # BGR [H, W, 3] uint8, as read (outputs draw on a copy)
    persons: list  # [pipeline.Person]
    ids: List[int]  # track id per person
    raw_keypoints: Optional[List[np.ndarray]] = None  # [K, 3] per person, before smoothing
    captured: float = 0.0  # wall-clock time (Unix seconds) when the frame was read

    def record(self, raw_keypoints: bool = False) -> dict:
        """The frame's record: frame index, timestamp (s), persons with track id, box, scores and keypoints clamped
        to the frame (a person cut by the border otherwise gets points outside the image); ``raw_keypoints`` adds
        the unsmoothed keypoints when smoothing."""
        shape = self.image.shape
        people = [dict(person.to_dict(clamp_to=shape), id=int(ident)) for person, ident in zip(self.persons, self.ids)]
        if raw_keypoints and self.raw_keypoints is not None:
            for entry, person, raw in zip(people, self.persons, self.raw_keypoints):
                entry["raw_keypoints"] = replace(person, keypoints=raw).to_dict(clamp_to=shape)["keypoints"]
        return {"frame": self.index, "time": round(float(self.timestamp), 3), "persons": people}


@dataclass
class StreamStats:
    source: str
    frames_in: int = 0  # admitted into the pipeline
    frames: int = 0  # handed to the caller (the outputs)
    persons: int = 0
    dropped: int = 0  # a live source's frames replaced by newer ones before the pipeline took them
    detector_runs: int = 0
    followed: int = 0  # persons posed while following (--detect-every, --detect async)
    followed_ended: int = 0  # of those, not followed into the next frame: < 4 keypoints scored --track-min-score
    ended: str = ""  # end | stopped | interrupted | lost | error: ... | aborted
    frame_count: Optional[int] = None  # what the container reports
    fps_nominal: Optional[float] = None
    seconds: float = 0.0  # from the engine's start to this stream's last frame
    outputs: List[str] = field(default_factory=list)  # files written for this stream
    encoder: str = ""  # the overlay video's writer

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def following_line(self) -> Optional[str]:
        """A warning when persons keep failing to be followed for low keypoint scores (a quarter of them or more)."""
        if self.followed < 10 or self.followed_ended * 4 < self.followed:
            return None
        return ("{} of {} persons ({:.0%}) could not be followed into the next frame: fewer than 4 of their keypoints "
                "scored --track-min-score, so between detections they vanish (random weights, or a model that does "
                "not fit these images; --detect sync detects on every frame)".format(
                    self.followed_ended, self.followed, self.followed_ended / self.followed))

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
class StreamEnd:
    """The last event of a stream: its outputs can be finalised."""

    stream: int
    stats: StreamStats


@dataclass
class EngineStats:
    wall_s: float = 0.0
    workers: int = 0
    detect_workers: int = 0
    max_batch: int = 0
    pose_calls: int = 0
    busy_s: Dict[str, float] = field(default_factory=OrderedDict)  # per stage, summed over its threads
    threads: Dict[str, int] = field(default_factory=OrderedDict)  # threads per stage
    model_stages: Dict[str, float] = field(default_factory=OrderedDict)  # infer / copy_in / copy_out seconds
    stuck: List[str] = field(default_factory=list)  # stages whose threads did not leave when the engine closed

    def to_dict(self) -> dict:
        """JSON-ready figures (goatpose video's --summary-json, goatpose bench --video)."""
        return {"workers": self.workers, "detect_workers": self.detect_workers, "max_batch": self.max_batch,
                "pose_calls": self.pose_calls, "wall_s": round(self.wall_s, 4), "busy_s": dict(self.busy_s),
                "threads": dict(self.threads), "utilisation": dict(self.utilisation()),
                "model_s": dict(self.model_stages)}

    def utilisation(self) -> Dict[str, float]:
        """Busy time / (wall time x threads) per stage; stages overlap, so these do not add up to 1."""
        return OrderedDict((s, round(b / (self.wall_s * max(1, self.threads.get(s, 1))), 4) if self.wall_s else 0.0)
                           for s, b in self.busy_s.items())
