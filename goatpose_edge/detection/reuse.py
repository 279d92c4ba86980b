"""Follow persons by their keypoints: the one rule for the frames a detector does not run on.

With a detector every N frames, the detector runs on frame i when ``detector_due(i, N, carried)``: i is a multiple
of N (0, N, 2N, ...), or nobody is followed from frame i - 1 (every carried person ended). Other frames are posed on
the carried boxes. After a frame is posed, ``follow`` keeps the persons whose tracks go on: a person posed on a
carried box ends when fewer than ``TRACK_MIN_JOINTS`` of its keypoints score ``min_score`` or more (``track_alive``:
the person left or is hidden); a person posed on a detector's box always counts. The carried boxes for the next
frame are the kept persons' keypoint extents grown by ``CARRY_MARGIN`` per side (``carried_boxes``). The streaming
engine (``--detect-every``, ``--detect async``) and ``KeypointBoxReuse`` (the single-frame API) both use it.
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


def detector_due(index: int, every: int, carried: Detections) -> bool:
    """Whether the detector runs on frame ``index`` (0-based) when it runs every ``every`` frames and ``carried``
    holds the boxes followed from the frame before: on 0, N, 2N, ... and whenever nobody is followed."""
    return index % every == 0 or len(carried) == 0


def follow(persons: Sequence, carried: Sequence[bool], min_score: float = 0.3):
    """(persons kept, carried boxes for the next frame) after a frame was posed: ``carried[i]`` says whether
    ``persons[i]`` was posed on a carried box (its track ends when ``track_alive`` fails); detected persons stay."""
    kept = [p for p, was_carried in zip(persons, carried) if not was_carried or track_alive(p.keypoints, min_score)]
    return kept, carried_boxes(kept, min_score)


class KeypointBoxReuse(Detector):
    """Wraps a detector: it runs on frame 0, N, 2N, ... (and whenever nobody is being followed); other frames reuse
    the boxes carried from the persons posed on the previous frame (``observe``: ``carried_boxes``). An empty frame
    has no persons and does not count as a frame; any other frame goes to the wrapped detector as it would alone."""

    def __init__(self, detector: Detector, every: int, min_score: float = 0.3):
        if every < 1:
            raise DetectorError("--detect-every must be >= 1, got {}".format(every))
        self.detector = detector
        self.every = every
        self.min_score = min_score
        self.frame_index = 0
        self.previous = Detections.empty()
        self.carrying = False  # the last boxes handed out were carried ones

    def detect(self, frame: np.ndarray) -> Detections:
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        self.carrying = not detector_due(self.frame_index, self.every, self.previous)
        self.frame_index += 1
        return self.previous if self.carrying else self.detector.detect(image)

    def observe(self, persons: Sequence) -> list:
        """The persons of the frame just posed (objects with ``keypoints`` [K, 3] and ``box_score``) that are kept
        (``follow``); their boxes are what the next frame is posed on when the detector does not run for it."""
        kept, self.previous = follow(persons, [self.carrying] * len(persons), self.min_score)
        return kept

    def close(self) -> None:
        self.detector.close()
