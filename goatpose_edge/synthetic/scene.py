"""Synthetic video with ground truth: stick figures walking, crossing, entering and leaving the frame.

    options = walkers(frames=60)                     # or crossing(...), single(...), or SceneOptions(...)
    for frame, truth in render_scene(options):       # frame: BGR uint8 [H, W, 3]; truth: [FigureTruth]
        ...
    write_scene("walk.avi", "walk.truth.jsonl", options)
    truth = read_truth("walk.truth.jsonl")           # [[FigureTruth] per frame]

Each figure's 17 COCO joints are dots of a fixed colour per joint (``figure.JOINT_COLOURS``), drawn anti-aliased
with sub-pixel centres so that a dot's colour centroid is its true position; limbs (``contract.COCO_SKELETON``) are
thinner grey lines; the background is dark with a faint, static, seeded texture.

Visibility (the truth's v): a joint is visible when its true position is inside the frame and at least
``1 - SceneOptions.hidden_fraction`` of its dot's pixels are drawn and stay uncovered. Figures are drawn far to near
(a figure whose feet are lower in the frame is nearer; ties: the taller one), and within a figure dots are drawn in
joint order over its limbs; a dot covered by a nearer figure, a later dot of the same figure (the legs cross while
walking) or the frame border loses those pixels.

``jitter_px`` > 0 draws each dot displaced by seeded Gaussian noise (sigma ``jitter_px`` px per frame, joint and axis)
while the truth keeps the true, smooth position: a noisy pose estimator, for testing temporal filters.

Video files: .avi is written as MJPG, .mp4 as mp4v. Both subsample chroma (4:2:0), which smears colour over 2x2
pixel blocks and blurs it at dot rims; the default dot radius (H / 36, at least 3 px) keeps a dot's core at its
colour: after MJPG and mp4v the pixel at a visible dot's centre is on average 7-8 and at most ~25 (Euclidean, BGR,
0..255) away from its joint colour, and the pose pipeline's keypoint error grows by < 0.05 px (tests/synthetic).

Device side: numpy and OpenCV, Python 3.6.
"""

import json
import math
import os
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from goatpose_edge.artefact.contract import COCO_SKELETON
from goatpose_edge.fileio import atomic_output, same_file
from goatpose_edge.synthetic.figure import BACKGROUND_LEVEL, JOINT_COLOURS, LIMB_COLOUR, FigurePath, SceneError

__all__ = ["FigurePath", "FigureTruth", "SceneError", "SceneOptions", "VIDEO_FOURCC", "crossing", "read_truth",
           "render_scene", "single", "walkers", "write_scene"]

#: Video container -> the fourcc ``write_scene`` uses (the same pair as ``goatpose video`` output).
VIDEO_FOURCC = {".avi": "MJPG", ".mp4": "mp4v"}

_SHIFT = 4  # cv2 drawing with 4 fractional bits: 1/16 px positions
_ONE = 1 << _SHIFT


@dataclass
class SceneOptions:
    """A whole synthetic scene."""

    width: int = 640  # frame width, pixels
    height: int = 360  # frame height, pixels
    fps: float = 25.0  # frames per second (truth ``time`` = frame / fps)
    frames: int = 50  # number of frames
    figures: List[FigurePath] = field(default_factory=list)
    jitter_px: float = 0.0  # sigma of the drawn dots' Gaussian displacement, px (the truth does not move)
    dot_radius: Optional[float] = None  # dot radius, px (None: figure height / 36, at least 3 px)
    limb_thickness: int = 2  # limb line width, px (thinner than the dots)
    hidden_fraction: float = 0.25  # a joint is not visible once this fraction of its dot is covered or cut off
    box_padding: float = 0.1  # truth boxes grow by this fraction of their size on each side
    texture: float = 4.0  # amplitude of the static background texture, grey levels (0: plain)
    seed: int = 0  # seeds the texture and the jitter

    def __post_init__(self):
        if int(self.width) < 16 or int(self.height) < 16:
            raise SceneError("scene size {}x{} is too small: use at least 16x16 pixels".format(self.width,
                                                                                              self.height))
        if int(self.frames) < 1:
            raise SceneError("a scene needs at least 1 frame, got frames={}".format(self.frames))
        if not self.fps > 0:
            raise SceneError("fps must be > 0, got {}".format(self.fps))
        if self.jitter_px < 0 or (self.dot_radius is not None and self.dot_radius < 1):
            raise SceneError("jitter_px must be >= 0 and dot_radius >= 1 px (got {} and {})".format(
                self.jitter_px, self.dot_radius))
        if not 0 < self.hidden_fraction <= 1:
            raise SceneError("hidden_fraction must be in (0, 1], got {}".format(self.hidden_fraction))
        if int(self.limb_thickness) < 1:
            raise SceneError("limb_thickness must be >= 1 px, got {}".format(self.limb_thickness))

    def radius(self, path: FigurePath) -> float:
        """Dot radius (px) of a figure."""
        return float(self.dot_radius) if self.dot_radius is not None else max(3.0, path.height / 36.0)


@dataclass
class FigureTruth:
    """Ground truth of one figure in one frame."""

    figure_id: int  # index of the figure in ``SceneOptions.figures``
    keypoints: np.ndarray  # [17, 3] float64: (x, y) true joint positions in frame pixels, visible 0/1
    box: np.ndarray  # [4] float64 (x, y, w, h): visible dots' extent grown by box_padding; zeros if none visible
    height: float  # the figure's height H, pixels (the scale for matching distances)

    @property
    def visible(self) -> np.ndarray:
        """[17] bool."""
        return self.keypoints[:, 2] > 0

    def to_dict(self) -> dict:
        return {"id": int(self.figure_id), "height": round(float(self.height), 3),
                "keypoints": [[round(float(x), 3), round(float(y), 3), int(v)] for x, y, v in self.keypoints],
                "box": [round(float(v), 3) for v in self.box]}

    @classmethod
    def from_dict(cls, data: dict) -> "FigureTruth":
        keypoints = np.asarray(data["keypoints"], np.float64).reshape(17, 3)
        box = np.asarray(data["box"], np.float64).reshape(4)
        return cls(int(data["id"]), keypoints, box, float(data.get("height", box[3])))


def _background(options: SceneOptions) -> np.ndarray:
    """The static background, BGR uint8 [H, W, 3]: a dark level plus a smooth seeded texture."""
    height, width = int(options.height), int(options.width)
    base = np.full((height, width, 3), float(BACKGROUND_LEVEL), np.float32)
    if options.texture > 0:
        noise = np.random.RandomState(options.seed).randn(height, width).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), 3.0)
        noise *= options.texture / max(float(np.abs(noise).max()), 1e-6)
        base += noise[..., None] * np.array([1.0, 0.9, 0.8], np.float32)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def _fixed(point) -> Tuple[int, int]:
    return int(round(point[0] * _ONE)), int(round(point[1] * _ONE))


def _disc(centre, radius: float) -> Tuple[int, int, np.ndarray]:
    """A dot's pixels as drawn: (x0, y0, mask [h, w] bool) with the patch's top-left at frame pixel (x0, y0)."""
    x0, y0 = int(math.floor(centre[0] - radius)) - 2, int(math.floor(centre[1] - radius)) - 2
    size = int(math.ceil(2 * radius)) + 5
    patch = np.zeros((size, size), np.uint8)
    cv2.circle(patch, _fixed((centre[0] - x0, centre[1] - y0)), int(round(radius * _ONE)), 255, -1, cv2.LINE_AA,
               _SHIFT)
    return x0, y0, patch >= 128


def _window(x0: int, y0: int, mask: np.ndarray, shape) -> Tuple[slice, slice, np.ndarray]:
    """The part of a patch inside a frame of ``shape``: (rows, cols, clipped mask)."""
    h, w = mask.shape
    ya, xa = max(0, y0), max(0, x0)
    yb, xb = min(shape[0], y0 + h), min(shape[1], x0 + w)
    if ya >= yb or xa >= xb:
        return slice(0, 0), slice(0, 0), mask[:0, :0]
    return slice(ya, yb), slice(xa, xb), mask[ya - y0:yb - y0, xa - x0:xb - x0]


def _depth_order(options: SceneOptions, frame_index: int, present: Sequence[int]) -> List[int]:
    """Figure indices far to near: feet higher in the frame (smaller y) first, then the smaller figure."""
    def key(index):
        path = options.figures[index]
        feet = path.start_xy[1] + path.velocity_xy[1] * (frame_index - path.first_frame) + 0.49 * path.height
        return (feet, path.height, index)
    return sorted(present, key=key)


def _truth_box(keypoints: np.ndarray, radius: float, padding: float) -> np.ndarray:
    """[4] (x, y, w, h) around the visible joints' dots, grown by ``padding`` x size per side; zeros if none."""
    visible = keypoints[:, 2] > 0
    if not visible.any():
        return np.zeros(4, np.float64)
    points = keypoints[visible, :2]
    x0, y0 = points.min(axis=0) - radius
    x1, y1 = points.max(axis=0) + radius
    w, h = x1 - x0, y1 - y0
    return np.array([x0 - padding * w, y0 - padding * h, w * (1 + 2 * padding), h * (1 + 2 * padding)])


def render_scene(options: SceneOptions) -> Iterator[Tuple[np.ndarray, List[FigureTruth]]]:
    """Yield (frame BGR uint8 [H, W, 3], [FigureTruth] of the figures present, by figure id) for each frame."""
    background = _background(options)
    shape = background.shape[:2]
    rng = np.random.RandomState(options.seed + 1)  # the jitter: one draw per frame, figure, joint and axis
    count = len(options.figures)
    for frame_index in range(int(options.frames)):
        frame = background.copy()
        noise = rng.randn(count, 17, 2) * options.jitter_px if options.jitter_px > 0 else np.zeros((count, 17, 2))
        present = [i for i, path in enumerate(options.figures) if path.present(frame_index)]
        order = _depth_order(options, frame_index, present)
        true_xy = {i: options.figures[i].joints(frame_index) for i in present}
        drawn_xy = {i: true_xy[i] + noise[i] for i in present}
        discs = {i: [_disc(p, options.radius(options.figures[i])) for p in drawn_xy[i]] for i in present}
        for i in order:  # far to near
            _draw_figure(frame, drawn_xy[i], options.figures[i], options)
        cover = np.zeros(shape, bool)  # pixels drawn by figures nearer than the current one
        visible = {}
        for i in reversed(order):  # near to far
            own = cover.copy()
            flags = np.zeros(17, np.float64)
            for k in range(16, -1, -1):  # later dots cover earlier ones of the same figure
                x0, y0, mask = discs[i][k]
                rows, cols, inside = _window(x0, y0, mask, shape)
                total = max(int(mask.sum()), 1)
                shown = int((inside & ~own[rows, cols]).sum())
                x, y = true_xy[i][k]
                in_frame = 0 <= x <= shape[1] - 1 and 0 <= y <= shape[0] - 1
                flags[k] = 1.0 if in_frame and shown >= (1.0 - options.hidden_fraction) * total else 0.0
                own[rows, cols] |= inside
            visible[i] = flags
            cover |= _figure_mask(shape, drawn_xy[i], discs[i], options)
        truth = []
        for i in present:
            keypoints = np.concatenate([true_xy[i], visible[i][:, None]], axis=1)  # [17, 3]
            box = _truth_box(keypoints, options.radius(options.figures[i]), options.box_padding)
            truth.append(FigureTruth(i, keypoints, box, float(options.figures[i].height)))
        yield frame, truth


def _draw_figure(frame: np.ndarray, joints: np.ndarray, path: FigurePath, options: SceneOptions) -> None:
    """Limbs, then dots in joint order, onto ``frame`` in place (joints [17, 2] in frame pixels)."""
    for a, b in COCO_SKELETON:
        cv2.line(frame, _fixed(joints[a]), _fixed(joints[b]), LIMB_COLOUR, int(options.limb_thickness),
                 cv2.LINE_AA, _SHIFT)
    radius = int(round(options.radius(path) * _ONE))
    for k in range(17):
        cv2.circle(frame, _fixed(joints[k]), radius, JOINT_COLOURS[k], -1, cv2.LINE_AA, _SHIFT)


def _figure_mask(shape, joints: np.ndarray, discs, options: SceneOptions) -> np.ndarray:
    """bool [H, W]: the pixels a figure draws (limbs and dots)."""
    mask = np.zeros(shape, np.uint8)
    for a, b in COCO_SKELETON:
        cv2.line(mask, _fixed(joints[a]), _fixed(joints[b]), 255, int(options.limb_thickness), cv2.LINE_AA, _SHIFT)
    out = mask >= 128
    for x0, y0, disc in discs:
        rows, cols, inside = _window(x0, y0, disc, shape)
        out[rows, cols] |= inside
    return out


# Presets -------------------------------------------------------------------------------------------------------


def _speed(frames: int, distance: float) -> float:
    """px / frame that covers ``distance`` px in ``frames`` frames, kept between 0.5 and 6 (a walk: a 170 px figure
    at 25 fps walking 1.4 m/s moves ~6 px per frame)."""
    return float(min(6.0, max(0.5, distance / max(int(frames), 1))))


def walkers(frames: int = 50, width: int = 640, height: int = 360, **scene) -> SceneOptions:
    """Four figures walking right in file, a fifth of the frame width or more apart: they never overlap. The first
    enters at the left border, the last leaves at the right one, the middle two stay in the frame."""
    speed = _speed(frames, 0.18 * width)
    heights = [0.44 * height, 0.5 * height, 0.42 * height, 0.47 * height]
    xs = [-0.06 * width, 0.23 * width, 0.52 * width, 0.84 * width]
    figures = [FigurePath((x, 0.5 * height + 0.02 * h - 0.03 * height * (i % 2)), (speed, 0.0), h, phase=1.3 * i)
               for i, (x, h) in enumerate(zip(xs, heights))]
    return SceneOptions(width=width, height=height, frames=frames, figures=figures, **scene)


def crossing(frames: int = 50, width: int = 640, height: int = 360, **scene) -> SceneOptions:
    """Two figures walking toward each other; their paths cross mid-scene, the nearer (taller, feet lower) one in
    front, hiding dots of the farther one while they overlap."""
    speed = _speed(frames, 0.5 * width)
    near, far = 0.5 * height, 0.4 * height
    meet = 0.5 * (frames - 1)
    figures = [FigurePath((0.5 * width - speed * meet, 0.52 * height), (speed, 0.0), near),
               FigurePath((0.5 * width + speed * meet, 0.46 * height), (-speed, 0.0), far, phase=2.0)]
    return SceneOptions(width=width, height=height, frames=frames, figures=figures, **scene)


def single(frames: int = 30, width: int = 640, height: int = 360, figure_height: Optional[float] = None,
           velocity_xy: Tuple[float, float] = (1.5, 0.0), **scene) -> SceneOptions:
    """One figure of ``figure_height`` px (default half the frame height) walking through the middle."""
    h = float(figure_height) if figure_height is not None else 0.5 * height
    start = (0.5 * width - velocity_xy[0] * 0.5 * (frames - 1), 0.5 * height + 0.05 * h)
    return SceneOptions(width=width, height=height, frames=frames,
                        figures=[FigurePath(start, tuple(velocity_xy), h)], **scene)


PRESETS = {"walkers": walkers, "crossing": crossing, "single": single}


# Files ---------------------------------------------------------------------------------------------------------


def _check_paths(video_path: str, truth_path: str) -> str:
    """The fourcc for ``video_path``; refuses equal paths and unknown containers in one line."""
    if same_file(video_path, truth_path):
        raise SceneError("the video and the truth would both be written to {}: give the truth its own file, e.g. "
                         "{}".format(video_path, os.path.splitext(video_path)[0] + ".truth.jsonl"))
    ext = os.path.splitext(video_path)[1].lower()
    if ext not in VIDEO_FOURCC:
        raise SceneError("cannot write video {}: use a {} file".format(video_path,
                                                                       " or ".join(sorted(VIDEO_FOURCC))))
    if not truth_path.lower().endswith((".jsonl", ".json")):
        raise SceneError("truth file {} should end in .jsonl (one JSON object per frame)".format(truth_path))
    return VIDEO_FOURCC[ext]


def write_scene(video_path: str, truth_path: str, options: SceneOptions) -> int:
    """Render ``options`` into a video file (.avi MJPG / .mp4 mp4v) and a ground-truth JSON Lines file, each
    written atomically (a temporary file beside it, then renamed); returns the number of frames.

    Truth lines: {"frame": i, "time": i / fps, "width", "height", "figures": [{"id", "height", "keypoints":
    [[x, y, v] * 17], "box": [x, y, w, h]}]} with v 0/1 and positions in frame pixels.
    """
    fourcc = _check_paths(video_path, truth_path)
    count = 0
    with atomic_output(video_path) as video_tmp, atomic_output(truth_path) as truth_tmp:
        writer = cv2.VideoWriter(video_tmp, cv2.VideoWriter_fourcc(*fourcc), float(options.fps),
                                 (int(options.width), int(options.height)))
        if not writer.isOpened():
            raise SceneError("OpenCV cannot open a {} writer for {} (this OpenCV build lacks the codec): try the "
                             "other container ({})".format(fourcc, video_path, ", ".join(sorted(VIDEO_FOURCC))))
        try:
            with open(truth_tmp, "w") as truth_file:
                for index, (frame, truth) in enumerate(render_scene(options)):
                    writer.write(frame)
                    record = {"frame": index, "time": round(index / float(options.fps), 6),
                              "width": int(options.width), "height": int(options.height),
                              "figures": [t.to_dict() for t in truth]}
                    truth_file.write(json.dumps(record, separators=(",", ":")) + "\n")
                    count += 1
        finally:
            writer.release()
    return count


def read_truth(truth_path: str) -> List[List[FigureTruth]]:
    """A ``write_scene`` truth file -> [[FigureTruth] per frame], index = frame number."""
    frames = []  # type: List[List[FigureTruth]]
    try:
        with open(truth_path) as f:
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if record["frame"] != len(frames):
                        raise ValueError("frame {} where {} was expected".format(record["frame"], len(frames)))
                    frames.append([FigureTruth.from_dict(figure) for figure in record["figures"]])
                except (ValueError, KeyError, TypeError) as exc:
                    raise SceneError("{} line {} is not a scene truth record ({}): write it with write_scene".format(
                        truth_path, line_number, exc)) from exc
    except (OSError, IOError) as exc:
        raise SceneError("cannot read truth file {}: {}".format(truth_path, exc.strerror or exc)) from exc
    if not frames:
        raise SceneError("truth file {} has no frames".format(truth_path))
    return frames
