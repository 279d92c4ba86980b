"""The detector contract: a BGR frame in, person boxes out.

Every detector returns ``Detections``: boxes [M, 4] float32 as (x, y, w, h) in frame pixels and scores [M] float32,
best first. Detectors that can reuse the poses they helped find (``KeypointBoxReuse``) also take ``observe(persons)``.

Any frame is defined (``detector_frame``): grayscale [H, W] / [H, W, 1], gray + alpha, BGRA and 16-bit frames are
converted to 8-bit BGR; an empty frame (a zero side) and a frame smaller than a detector's window (after the
detector's own downscale) have no persons; a non-image (a float array, None) raises ``ImageError``, a GoatPoseError.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import to_bgr8


class DetectorError(GoatPoseError):
    """A detector that cannot be loaded or whose output cannot be read."""


@dataclass
class Detections:
    boxes: np.ndarray  # [M, 4] float32, (x, y, w, h) in frame pixels
    scores: np.ndarray  # [M] float32

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    @classmethod
    def sorted(cls, boxes, scores) -> "Detections":
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        order = np.argsort(-scores, kind="stable")
        return cls(boxes[order], scores[order])

    def __len__(self) -> int:
        return len(self.scores)


def detector_frame(frame) -> Optional[np.ndarray]:
    """A frame as uint8 BGR [H, W, 3], or None when it is empty (a detector then finds nobody)."""
    image = to_bgr8(frame, "a frame")
    return image if image.size else None


class Detector:
    """Base: ``detect(frame_bgr [H, W, 3] uint8) -> Detections``; ``close()`` releases backend resources."""

    def detect(self, frame: np.ndarray) -> Detections:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class WholeFrame(Detector):
    """One box covering the frame: for crops that already show one person."""

    def detect(self, frame: np.ndarray) -> Detections:
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        height, width = image.shape[:2]
        return Detections(np.array([[0, 0, width, height]], np.float32), np.ones(1, np.float32))


def nms_boxes(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float) -> Detections:
    """OpenCV's NMS on (x, y, w, h) boxes -> the kept ``Detections``, best first."""
    import cv2

    if len(scores) == 0:
        return Detections.empty()
    keep = cv2.dnn.NMSBoxes([list(map(float, b)) for b in boxes], [float(s) for s in scores], score_threshold,
                            iou_threshold)
    keep = np.asarray(keep, np.int64).reshape(-1)
    return Detections.sorted(boxes[keep], scores[keep])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [M, 4] and b [N, 4], both (x, y, w, h) -> [M, N]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None) * np.clip(
        np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
