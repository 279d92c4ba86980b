"""Track ids stable across frames: greedy matching of persons to tracks (the SORT idea without the Kalman filter).

    tracker = IoUTracker()
    ids = tracker.update(boxes)                   # boxes [M, 4] (x, y, w, h) -> [M] int track ids
    ids = tracker.update(boxes, keypoints)        # + keypoints [M, K, 3]: pose similarity where both have joints

The similarity of a person and a track is the IoU of their boxes or, when both have at least ``min_joints`` joints
scoring above ``joint_score``, the OKS of their keypoints (COCO sigmas, the track's box area) where that is higher.
As two persons pass each other their boxes overlap but their joints do not: the right pairs score higher, and the
matching takes the best pairs first.
"""

from typing import List, Optional

import numpy as np

from goatpose_edge.codec.oks import oks_iou
from goatpose_edge.detection.base import iou_matrix


class IoUTracker:
    """Each new person takes the id of the unmatched track it is most similar to (>= ``threshold``), best pairs
    first; unmatched persons start new ids; a track unseen for more than ``max_age`` frames is dropped."""

    def __init__(self, threshold: float = 0.3, max_age: int = 5, joint_score: float = 0.3, min_joints: int = 3):
        self.threshold = threshold
        self.max_age = max_age
        self.joint_score = joint_score
        self.min_joints = min_joints
        self.next_id = 0
        self.tracks = []  # type: List[dict]  # {"id", "box", "keypoints" (or None), "age"}

    def _posed(self, keypoints: Optional[np.ndarray]) -> bool:
        return keypoints is not None and int((keypoints[:, 2] > self.joint_score).sum()) >= self.min_joints

    def similarity(self, boxes: np.ndarray, keypoints) -> np.ndarray:
        """[M, T] similarity of M persons to the current tracks: max(IoU, OKS where both have poses)."""
        similarity = iou_matrix(boxes, np.stack([t["box"] for t in self.tracks]))
        posed = [i for i in range(len(boxes)) if self._posed(keypoints[i])]
        if not posed:
            return similarity
        others = np.stack([keypoints[i] for i in posed]).astype(np.float64)
        areas = boxes[posed, 2] * boxes[posed, 3]
        for j, track in enumerate(self.tracks):
            if self._posed(track["keypoints"]):
                area = float(track["box"][2] * track["box"][3])
                similarity[posed, j] = np.maximum(similarity[posed, j], oks_iou(
                    track["keypoints"].astype(np.float64), others, area, areas))
        return similarity

    def update(self, boxes, keypoints=None) -> List[int]:
        """Ids for this frame's persons: ``boxes`` [M, 4] (x, y, w, h), ``keypoints`` [M, K, 3] or None."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        keypoints = [None] * len(boxes) if keypoints is None else [np.asarray(k) for k in keypoints]
        ids = [-1] * len(boxes)
        if self.tracks and len(boxes):
            similarity = self.similarity(boxes, keypoints)
            pairs = sorted(((similarity[i, j], i, j) for i in range(similarity.shape[0])
                            for j in range(similarity.shape[1]) if similarity[i, j] >= self.threshold), reverse=True)
            used_boxes, used_tracks = set(), set()
            for _, i, j in pairs:
                if i in used_boxes or j in used_tracks:
                    continue
                used_boxes.add(i)
                used_tracks.add(j)
                ids[i] = self.tracks[j]["id"]
                self.tracks[j].update(box=boxes[i], keypoints=keypoints[i], age=0)
        matched = set(ids)
        for track in self.tracks:
            if track["id"] not in matched:
                track["age"] += 1
        self.tracks = [t for t in self.tracks if t["age"] <= self.max_age]
        for i, box in enumerate(boxes):
            if ids[i] < 0:
                ids[i] = self.next_id
                self.tracks.append({"id": self.next_id, "box": box, "keypoints": keypoints[i], "age": 0})
                self.next_id += 1
        return ids
