"""Temporal smoothing of keypoints: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012), one per track and
keypoint coordinate, driven by the frames' timestamps.

    smoother = KeypointSmoother(OneEuroOptions(min_cutoff=1.5, beta=0.07, d_cutoff=2.0))
    smoothed = smoother.update(ids, keypoints, timestamp)   # ids [M], keypoints [M, K, 3] -> [M, K, 3]

Each coordinate is low-pass filtered with a cutoff that rises with its speed: ``cutoff = min_cutoff + beta *
|speed|`` (Hz, speed in pixels/s from the derivative low-passed at ``d_cutoff``). A still person is smoothed hard
(jitter removed), a moving one lightly (little lag). Scores pass through unchanged. A track seen for the first time,
or again after missing a frame, or whose joints jump by more than ``reset_jump`` of its height in one frame (another
person took the track over), starts fresh (that frame is passed through); a track absent from a frame is forgotten.

A person is filtered as its centre (the score-weighted mean of its keypoints) plus each keypoint's offset from it,
each with its own One-Euro filter: walking moves the whole body, and a filter on absolute positions lags behind it
(the cutoff a jittery joint needs is far below what the body's speed needs); the centre averages the joints' jitter
away and gets ``centre_beta`` (a faster filter), the offsets move only as much as the limbs swing.

Defaults, chosen on the synthetic harness (tests/video/test_harness.py; figures walking 1.4 and 4 px/frame at 25 fps,
2 px of jitter per joint and axis): about a third of the error jitter adds is removed, with a lag of 0.1-0.4 frames.
benchmarks/README.md has the numbers and the command.
"""

import math
from dataclasses import dataclass, replace
from typing import Dict, Optional, Sequence

import numpy as np


#: the cutoffs a filter takes, Hz (below, the smoothing factor underflows; above, a frame interval is all noise)
CUTOFF_RANGE = (1e-4, 1e4)
#: the largest beta (Hz per pixel/s of speed)
MAX_BETA = 1e3

#: the centre's beta is this many times ``beta`` unless ``centre_beta`` is given
CENTRE_BETA = 5.0


@dataclass
class OneEuroOptions:
    min_cutoff: float = 1.5  # Hz: the cutoff of a still keypoint (lower: smoother, more lag when it starts moving)
    beta: float = 0.07  # 1/pixel: how fast the cutoff rises with speed (higher: less lag, less smoothing in motion)
    d_cutoff: float = 2.0  # Hz: the cutoff of the speed estimate
    centre_beta: Optional[float] = None  # beta of the person's centre (None: CENTRE_BETA x beta; its jitter is averaged
    # over the joints, so it can follow faster)
    reset_jump: float = 0.25  # a track whose joints move more than this x its height in one frame starts fresh
    fallback_fps: float = 25.0  # the frame interval used when timestamps do not advance

    @property
    def centre_beta_or_default(self) -> float:
        return CENTRE_BETA * self.beta if self.centre_beta is None else self.centre_beta

    def check(self) -> "OneEuroOptions":
        for name in ("min_cutoff", "d_cutoff", "fallback_fps", "reset_jump"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError("{} must be a positive number, got {}".format(name, value))
        for name in ("min_cutoff", "d_cutoff"):  # beyond these the filter's arithmetic over- or underflows
            value = getattr(self, name)
            if not CUTOFF_RANGE[0] <= value <= CUTOFF_RANGE[1]:
                raise ValueError("{} must be between {:g} and {:g} Hz, got {:g}".format(name, CUTOFF_RANGE[0],
                                                                                      CUTOFF_RANGE[1], value))
        for name in ("beta", "centre_beta"):
            value = getattr(self, name)
            if value is None and name == "centre_beta":
                continue
            if not (value >= 0 and math.isfinite(value)) or value > MAX_BETA:
                raise ValueError("{} must be between 0 and {:g}, got {}".format(name, MAX_BETA, value))
        return self


def smoothing_factor(cutoff, dt: float):
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz over ``dt`` seconds."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of coordinates (any shape, e.g. [K, 2]); ``__call__(x, t)`` -> filtered x."""

    def __init__(self, options: OneEuroOptions):
        self.options = options
        self.x = self.dx = None  # type: np.ndarray
        self.t = None  # type: float

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self.t
        if not dt > 0:  # a repeated or backwards timestamp (a live source's clock): one nominal frame
            dt = 1.0 / self.options.fallback_fps
        a_d = smoothing_factor(self.options.d_cutoff, dt)
        self.dx = a_d * (x - self.x) / dt + (1 - a_d) * self.dx
        a = smoothing_factor(self.options.min_cutoff + self.options.beta * np.abs(self.dx), dt)
        self.x = a * x + (1 - a) * self.x
        self.t = self.t + dt
        return self.x.copy()


class KeypointSmoother:
    """Per track: a ``OneEuroFilter`` on the centre (score-weighted mean, beta ``centre_beta``) and one on the
    keypoints' offsets from it; tracks absent from a frame are forgotten."""

    def __init__(self, options: OneEuroOptions = None):
        self.options = (options or OneEuroOptions()).check()
        # the centre's filter: the same options with its own beta (by name: a positional list once put the
        # fallback fps into centre_beta)
        self.centre_options = replace(self.options, beta=self.options.centre_beta_or_default)
        self.filters = {}  # type: Dict[int, tuple]  # id -> (centre filter, offsets filter, last raw [K, 2])

    def update(self, ids: Sequence[int], keypoints: Sequence[np.ndarray], timestamp: float) -> list:
        """Smoothed copies of ``keypoints`` ([K, 3] each: x, y filtered, score kept) for the tracks ``ids``."""
        filters = {}
        smoothed = []
        for ident, points in zip(ids, keypoints):
            points = np.asarray(points)
            xy = points[:, :2].astype(np.float64)
            state = self.filters.get(int(ident))
            if state is None or _jumped(state[2], xy, self.options.reset_jump):
                state = (OneEuroFilter(self.centre_options), OneEuroFilter(self.options), None)
            weights = np.clip(points[:, 2].astype(np.float64), 1e-3, None)
            centre = (xy * weights[:, None]).sum(axis=0) / weights.sum()
            out = points.astype(np.float64)
            out[:, :2] = state[0](centre, timestamp) + state[1](xy - centre, timestamp)
            filters[int(ident)] = (state[0], state[1], xy)
            smoothed.append(out.astype(points.dtype))
        self.filters = filters  # a track missing from this frame starts fresh when it returns
        return smoothed


def _jumped(previous: np.ndarray, current: np.ndarray, fraction: float) -> bool:
    """Whether a track's keypoints [K, 2] moved by more than ``fraction`` of the person's height (the median joint's
    move) since the last frame: another person took the track over (two persons in one box, an identity switch),
    and smoothing across the jump would blend the two."""
    if previous is None:
        return False
    height = max(float(np.ptp(current[:, 1])), float(np.ptp(previous[:, 1])), 1.0)
    return float(np.median(np.linalg.norm(current - previous, axis=1))) > fraction * height
