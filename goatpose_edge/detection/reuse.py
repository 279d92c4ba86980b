"""Follow persons by their keypoints: the one rule for the frames a detector does not run on.

A followed person goes on while ``TRACK_MIN_JOINTS`` of its keypoints score ``min_score`` or more (``track_alive``);
its next box is its keypoints' extent grown by ``CARRY_MARGIN`` per side (``carried_boxes``). The streaming engine
(``--detect-every``, ``--detect async``) and ``KeypointBoxReuse`` (the single-frame API) both use it.
"""

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


#: a carried box is its keypoints' extent grown by this fraction per side: joints near the crop's border lose
#: heatmap response, and a person half out of the frame would shrink to the joints left
CARRY_MARGIN = 0.25

#: a followed person goes on while at least this many of its keypoints score ``track_min_score`` or more
TRACK_MIN_JOINTS = 4


def track_alive(keypoints: np.ndarray, min_score: float) -> bool:
    """Whether a followed person's poses [K, 3] still hold it: ``TRACK_MIN_JOINTS`` keypoints at ``min_score`` or
    more (a person half out of the frame keeps its track; one who left, or is hidden, has none)."""
    return int((keypoints[:, 2] >= min_score).sum()) >= TRACK_MIN_JOINTS


def carried_boxes(persons, min_score: float = 0.3) -> Detections:
    """Keypoint boxes of the persons (objects with ``keypoints`` [K, 3] and ``box_score``) whose tracks go on
    (``track_alive``): what the next frame is posed on when the detector does not run for it."""
    boxes, scores = [], []
    for person in persons:
        if not track_alive(person.keypoints, min_score):
            continue
        box = keypoint_box(person.keypoints, margin=CARRY_MARGIN)
        if box is not None:
            boxes.append(box)
            scores.append(person.box_score)
    return Detections.sorted(boxes, scores) if boxes else Detections.empty()


class KeypointBoxReuse(Detector):
    """Wraps a detector: it runs on frame 0, N, 2N, ... (and whenever nobody is being followed); other frames reuse
    the boxes carried from the persons posed on the previous frame (``observe``: ``carried_boxes``). An empty frame
    has no persons and does not count as a frame; any other frame goes to the wrapped detector as it would alone."""

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
        """Remember the boxes of this frame's persons (objects with ``keypoints`` [K, 3] and ``box_score``) whose
        tracks go on (``carried_boxes``)."""
        self.previous = carried_boxes(persons)

    def close(self) -> None:
        self.detector.close()
