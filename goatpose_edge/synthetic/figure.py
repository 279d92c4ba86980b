"""A stick figure walking: its path through the frame, its 17 COCO joints at each frame, and their colours.

Geometry, in units of the figure's height H (pixels, y down), relative to the pelvis (the midpoint of the hips):
the nose is 0.40 H above it, the ankles 0.49 H below it when the legs are straight, so the dots span about one H
(a little less: the top of the head is not a joint). The figure faces the camera, so its left joints lie on the
image's right (+x). Walking moves the pelvis at a constant velocity; the legs and arms swing in the image plane along
the walking direction, with a phase that advances 2 pi per ``stride`` heights walked (a figure that stands still does
not swing). The legs cross in half of each cycle, as in a side view, so a figure may hide one of its own dots.

Colours: joint k is always drawn in ``JOINT_COLOURS[k]`` (BGR). Every colour is a corner or edge point of the
{0, 127, 255}^3 grid with at least one channel at 255, so the colours are >= 127 apart pairwise, and the anti-aliased
rim of a dot (its colour blended toward the dark background or the grey limbs, whose brightest channel is below 255)
stays >= 90 away from every other joint's colour.

Device side: numpy only, Python 3.6.
"""

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from goatpose_edge.errors import GoatPoseError

class SceneError(GoatPoseError, ValueError):
    """Synthetic-scene options, files or predictions that cannot be used (one line: what and what to do)."""


#: BGR colour of each COCO joint, in ``contract.COCO_KEYPOINT_NAMES`` order.
JOINT_COLOURS = (
    (255, 255, 255),  # nose
    (0, 0, 255),  # left_eye
    (255, 0, 0),  # right_eye
    (0, 255, 0),  # left_ear
    (255, 0, 255),  # right_ear
    (0, 127, 255),  # left_shoulder
    (255, 127, 0),  # right_shoulder
    (0, 255, 127),  # left_elbow
    (127, 0, 255),  # right_elbow
    (127, 255, 0),  # left_wrist
    (255, 0, 127),  # right_wrist
    (127, 127, 255),  # left_hip
    (255, 127, 127),  # right_hip
    (127, 255, 127),  # left_knee
    (255, 127, 255),  # right_knee
    (127, 255, 255),  # left_ankle
    (255, 255, 127),  # right_ankle
)

#: BGR colour of the limbs: darker than every dot in its brightest channel, brighter than the background.
LIMB_COLOUR = (100, 100, 100)

#: Mean BGR level of the background (``scene`` adds a faint static texture around it).
BACKGROUND_LEVEL = 22

# Rest positions relative to the pelvis, in heights: (x toward the figure's left = image +x, y down).
_HEAD = {0: (0.0, -0.40), 1: (0.05, -0.46), 2: (-0.05, -0.46), 3: (0.115, -0.42), 4: (-0.115, -0.42)}
_SHOULDER_X, _SHOULDER_Y = 0.13, -0.30
_HIP_X = 0.08
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.17, 0.15, 0.245, 0.245
_ARM_ABDUCTION_DEG = (16.0, 26.0)  # upper arm, forearm: hands away from the hips


@dataclass
class FigurePath:
    """One figure's walk through the scene."""

    start_xy: Tuple[float, float]  # pelvis position (x, y) in frame pixels at ``first_frame``
    velocity_xy: Tuple[float, float] = (1.5, 0.0)  # pelvis velocity, frame pixels per frame
    height: float = 160.0  # figure height H, pixels (nose to ankles is about 0.9 H)
    first_frame: int = 0  # frame at which the figure appears
    last_frame: Optional[int] = None  # first frame without the figure (None: until the scene ends)
    phase: float = 0.0  # gait phase at ``first_frame``, radians
    swing_deg: float = 22.0  # leg swing amplitude from vertical, degrees (the arms swing 0.7 of it)
    knee_bend_deg: float = 25.0  # largest knee flexion, degrees
    stride: float = 1.0  # heights walked per gait cycle
    bob: float = 0.01  # vertical pelvis bob, heights (up at each step)

    def __post_init__(self):
        if not (self.height > 0 and math.isfinite(self.height)):
            raise SceneError("FigurePath.height must be a positive number of pixels, got {!r}".format(self.height))
        if self.stride <= 0:
            raise SceneError("FigurePath.stride must be > 0 heights per gait cycle, got {!r}".format(self.stride))
        if self.last_frame is not None and self.last_frame <= self.first_frame:
            raise SceneError("FigurePath.last_frame {} must be after first_frame {}".format(
                self.last_frame, self.first_frame))

    def present(self, frame_index: int) -> bool:
        """Whether the figure is part of the scene at this frame (in the picture or not)."""
        return frame_index >= self.first_frame and (self.last_frame is None or frame_index < self.last_frame)

    def joints(self, frame_index: float) -> np.ndarray:
        """The 17 joints [17, 2] float64 (x, y) in frame pixels at a (possibly fractional) frame index."""
        t = float(frame_index) - self.first_frame
        vx, vy = float(self.velocity_xy[0]), float(self.velocity_xy[1])
        speed = math.hypot(vx, vy)
        direction = 1.0 if vx >= 0 else -1.0  # the swing follows the horizontal walking direction
        phi = self.phase + 2.0 * math.pi * speed * t / (self.stride * self.height)
        height = self.height
        pelvis = np.array([self.start_xy[0] + vx * t,
                           self.start_xy[1] + vy * t - self.bob * height * abs(math.sin(phi))])
        out = np.zeros((17, 2), np.float64)
        for k, (dx, dy) in _HEAD.items():
            out[k] = pelvis + height * np.array([dx, dy])
        swing = math.radians(self.swing_deg)
        bend = math.radians(self.knee_bend_deg)
        for side, sign in ((0, 1.0), (1, -1.0)):  # 0: left (image +x), 1: right
            wave = math.sin(phi) * (1.0 if side == 0 else -1.0)  # the legs swing in antiphase
            shoulder = pelvis + height * np.array([sign * _SHOULDER_X, _SHOULDER_Y])
            arm = -0.7 * swing * wave  # each arm swings against the leg on its side
            elbow = shoulder + height * _segment(_UPPER_ARM, arm, _ARM_ABDUCTION_DEG[0], sign, direction)
            wrist = elbow + height * _segment(_FOREARM, arm + math.radians(12.0), _ARM_ABDUCTION_DEG[1], sign,
                                              direction)
            hip = pelvis + height * np.array([sign * _HIP_X, 0.0])
            thigh = swing * wave
            flex = bend * (0.5 + 0.5 * math.cos(phi + (0.0 if side == 0 else math.pi)))
            knee = hip + height * _segment(_THIGH, thigh, 0.0, sign, direction)
            ankle = knee + height * _segment(_SHIN, thigh - flex, 0.0, sign, direction)
            out[5 + side], out[7 + side], out[9 + side] = shoulder, elbow, wrist
            out[11 + side], out[13 + side], out[15 + side] = hip, knee, ankle
        return out


def _segment(length: float, swing: float, abduction_deg: float, side: float, direction: float) -> np.ndarray:
    """Offset [2] (heights) of a limb segment hanging down, swung by ``swing`` radians toward the walking
    ``direction`` (+1 / -1 in x) and spread by ``abduction_deg`` toward its ``side`` (+1 left, -1 right)."""
    abduction = math.radians(abduction_deg)
    return length * np.array([direction * math.sin(swing) * math.cos(abduction) + side * math.sin(abduction),
                              math.cos(swing) * math.cos(abduction)])
