"""A person detector for synthetic scenes: the figures are the only bright things on a dark background.

    detector = FigureDetector()                  # or make_detector("figures"), make_detector("figures:40")
    detections = detector.detect(frame_bgr)      # Detections: boxes [M, 4] (x, y, w, h), scores [M], best first

Pixels whose brightest channel exceeds ``threshold`` (the limbs and dots; the background is ~22) are closed
morphologically (so a dot that only touches its limb stays attached), split into connected components, and each
component large enough becomes a box around its pixels. Components that share at least ``merge_overlap`` of the
narrower one's x-range are one figure: a figure cut by the frame border loses the limbs that join its pieces, which
then lie one above the other. Boxes grow by ``padding`` per side (as ``scene`` pads its truth boxes). The score is 1.0
for every figure; boxes come in order of pixel count, largest first.

Figures that overlap (``scene.crossing``) merge into one component and so one box: a limitation, acceptable for
scoring tracking across a crossing (the pose model still finds the joints of the nearer figure in it). The
``walkers`` preset never overlaps: one component per figure.

``delay_s`` sleeps in every ``detect``: a detector slower than the pose model (HOG costs more than the engine on a
TX2), for testing asynchronous detection.

Device side: numpy and OpenCV, Python 3.6.
"""

import time
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from goatpose_edge.detection.base import Detections, Detector, DetectorError, detector_frame

__all__ = ["FigureDetector", "FigureDetectorOptions"]


@dataclass
class FigureDetectorOptions:
    threshold: int = 60  # brightest-channel level that counts as figure (background ~22, limbs 100, dots 255)
    close_px: int = 5  # side of the elliptical closing kernel, px
    min_area: int = 60  # fewer foreground pixels than this: not a figure (noise, a hand at the border)
    min_height: int = 12  # boxes shorter than this (px) are dropped
    merge_overlap: Optional[float] = 0.5  # components sharing this part of the narrower x-range merge (None: never)
    padding: float = 0.1  # boxes grow by this fraction of their size on each side
    delay_s: float = 0.0  # sleep per detect call, seconds

    def __post_init__(self):
        if not 0 <= self.threshold < 255 or self.close_px < 1 or self.min_area < 1 or self.padding < 0 or not (
                self.merge_overlap is None or 0 < self.merge_overlap <= 1):
            raise DetectorError("FigureDetector needs 0 <= threshold < 255, close_px >= 1, min_area >= 1, padding >= 0 "
                                "and 0 < merge_overlap <= 1; got {}".format(self))
        if not self.delay_s >= 0:
            raise DetectorError("FigureDetector delay_s must be >= 0 seconds, got {!r}".format(self.delay_s))


class FigureDetector(Detector):
    """Boxes around the bright connected blobs of a synthetic frame (see the module docstring)."""

    def __init__(self, options: Optional[FigureDetectorOptions] = None, **fields):
        """``options``, or its fields as keywords (``FigureDetector(delay_s=0.04)``)."""
        values = dict(vars(options)) if options is not None else {}
        values.update(fields)
        try:
            self.options = FigureDetectorOptions(**values)
        except TypeError as exc:
            raise DetectorError("FigureDetector: {}; its options are {}".format(
                exc, ", ".join(FigureDetectorOptions.__dataclass_fields__))) from exc
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.options.close_px, self.options.close_px))
        self.calls = 0

    @property
    def delay_s(self) -> float:
        return self.options.delay_s

    def detect(self, frame: np.ndarray) -> Detections:
        if self.options.delay_s > 0:
            time.sleep(self.options.delay_s)
        self.calls += 1
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        mask = (image.max(axis=2) > self.options.threshold).astype(np.uint8)  # [H, W]
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        blobs = [(int(area), [int(x), int(y), int(x + w), int(y + h)]) for x, y, w, h, area in stats[1:]]  # 0: ground
        if self.options.merge_overlap is not None:
            blobs = _merge_columns(blobs, self.options.merge_overlap)
        blobs = [(area, corners) for area, corners in blobs
                 if area >= self.options.min_area and corners[3] - corners[1] >= self.options.min_height]
        if not blobs:
            return Detections.empty()
        blobs.sort(key=lambda blob: -blob[0])
        edges = np.array([corners for _, corners in blobs], np.float64)  # [M, 4] (x0, y0, x1, y1) pixel edges
        w, h = edges[:, 2] - edges[:, 0], edges[:, 3] - edges[:, 1]
        # Pixel boxes span pixel edges: a component over columns a..b covers x in [a - 0.5, b + 0.5] in the
        # pixel-centre coordinates the keypoints use.
        pad = self.options.padding
        boxes = np.stack([edges[:, 0] - 0.5 - pad * w, edges[:, 1] - 0.5 - pad * h, w * (1 + 2 * pad),
                          h * (1 + 2 * pad)], axis=1)
        return Detections.sorted(boxes, np.ones(len(boxes), np.float32))


def _merge_columns(blobs: List[Tuple[int, List[int]]], overlap: float) -> List[Tuple[int, List[int]]]:
    """Merge (area, [x0, y0, x1, y1]) blobs whose x-ranges share >= ``overlap`` of the narrower one, until none do."""
    blobs = list(blobs)
    merged = True
    while merged:
        merged = False
        for i in range(len(blobs)):
            for j in range(i + 1, len(blobs)):
                a, b = blobs[i][1], blobs[j][1]
                shared = min(a[2], b[2]) - max(a[0], b[0])
                if shared >= overlap * min(a[2] - a[0], b[2] - b[0]):
                    corners = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    blobs[i] = (blobs[i][0] + blobs[j][0], corners)
                    del blobs[j]
                    merged = True
                    break
            if merged:
                break
    return blobs
