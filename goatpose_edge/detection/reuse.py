"""Run the detector every N frames and, in between, follow each person with the box of its last keypoints."""

from typing import Sequence

import numpy as np

from goatpose_edge.detection.base import Detections, Detector, DetectorError, detector_frame


def keypoint_box(keypoints: np.ndarray, min_score: float = 0.3, margin: float = 0.1):
    """(x, y, w, h) around the keypoints [K, 3] scoring above ``min_score``, grown by ``margin`` per side; None if
    fewer than two keypoints qualify."""
    good = keypoints[keypoints[:, 2] > min_score, :2]
    if len(good) < 2:
        return None
    (x0, y0), (x1, y1) = good.min(axis=0), good.max(axis=0)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    return [x0 - margin * w, y0 - margin * h, w * (1 + 2 * margin), h * (1 + 2 * margin)]


class KeypointBoxReuse(Detector):
    """Wraps a detector: it runs on frame 0, N, 2N, ... (and whenever nobody is being followed); other frames reuse
    the boxes of the persons found on the previous frame (``observe``). An empty frame has no persons and does not
    count as a frame; any other frame goes to the wrapped detector as it would alone (too small: nobody)."""

    def __init__(self, detector: Detector, every: int):
        if every < 1:
            raise DetectorError("--detect-every must be >= 1, got {}".format(every))
        self.detector = detector
        self.every = every
        self.frame_index = 0
        self.previous = Detections.empty()

    def detect(self, frame: np.ndarray) -> Detections:
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        fresh = self.frame_index % self.every == 0 or len(self.previous) == 0
        self.frame_index += 1
        return self.detector.detect(image) if fresh else self.previous

    def observe(self, persons: Sequence) -> None:
        """Remember the boxes of this frame's persons (objects with ``keypoints`` [K, 3] and ``box_score``)."""
        boxes, scores = [], []
        for person in persons:
            box = keypoint_box(person.keypoints)
            if box is not None:
                boxes.append(box)
                scores.append(person.box_score)
        self.previous = Detections.sorted(boxes, scores) if boxes else Detections.empty()

    def close(self) -> None:
        self.detector.close()
