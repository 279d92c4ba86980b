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
