"""Track ids stable across frames by greedy IoU matching of person boxes (the SORT idea without the Kalman filter).

    tracker = IoUTracker()
    ids = tracker.update(boxes)        # boxes [M, 4] (x, y, w, h) -> [M] int track ids
"""

from typing import List

import numpy as np


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


class IoUTracker:
    """Each new box takes the id of the unmatched track it overlaps most (IoU >= ``threshold``), best pairs first;
    unmatched boxes start new ids; a track unseen for more than ``max_age`` frames is dropped."""

    def __init__(self, threshold: float = 0.3, max_age: int = 5):
        self.threshold = threshold
        self.max_age = max_age
        self.next_id = 0
        self.tracks = []  # type: List[dict]  # {"id", "box", "age"}

    def update(self, boxes) -> List[int]:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        if self.tracks and len(boxes):
            iou = iou_matrix(boxes, np.stack([t["box"] for t in self.tracks]))
            pairs = sorted(((iou[i, j], i, j) for i in range(iou.shape[0]) for j in range(iou.shape[1])
                            if iou[i, j] >= self.threshold), reverse=True)
            used_boxes, used_tracks = set(), set()
            for _, i, j in pairs:
                if i in used_boxes or j in used_tracks:
                    continue
                used_boxes.add(i)
                used_tracks.add(j)
                ids[i] = self.tracks[j]["id"]
                self.tracks[j].update(box=boxes[i], age=0)
        matched = set(ids)
        for track in self.tracks:
            if track["id"] not in matched:
                track["age"] += 1
        self.tracks = [t for t in self.tracks if t["age"] <= self.max_age]
        for i, box in enumerate(boxes):
            if ids[i] < 0:
                ids[i] = self.next_id
                self.tracks.append({"id": self.next_id, "box": box, "age": 0})
                self.next_id += 1
        return ids
