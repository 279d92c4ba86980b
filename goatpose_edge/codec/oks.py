"""Person rescoring and OKS-NMS as HRNet's COCO evaluation does them (``lib/dataset/coco.py`` ``evaluate``,
``lib/nms/nms.py``).

Shapes: keypoints [P, K, 3] (x, y, score) in image pixels for P persons of one image; ``areas`` [P] in pixels^2
(HRNet uses the padded crop area, prod(scale * PIXEL_STD)); ``scores`` [P]; ``sigmas`` [K], default
``contract.COCO_SIGMAS`` (they live with the keypoint layout).
"""

from typing import List, Optional, Sequence

import numpy as np

from goatpose_edge.artefact.contract import COCO_SIGMAS


def rescore(box_scores: np.ndarray, keypoint_scores: np.ndarray, in_vis_thre: float = 0.2) -> np.ndarray:
    """HRNet's instance score: box score x mean of the keypoint scores above ``in_vis_thre`` (0 when none is).

    box_scores [P], keypoint_scores [P, K] -> [P].
    """
    keypoint_scores = np.asarray(keypoint_scores, np.float64).reshape(len(box_scores), -1)
    visible = keypoint_scores > in_vis_thre
    count = visible.sum(axis=1)
    mean = np.where(count > 0, (keypoint_scores * visible).sum(axis=1) / np.maximum(count, 1), 0.0)
    return mean * np.asarray(box_scores, np.float64)


def oks_iou(keypoints: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
            sigmas: Optional[np.ndarray] = None) -> np.ndarray:
    """OKS of one person [K, 3] against others [M, K, 3], with HRNet's area normalisation -> [M]."""
    sigmas = np.asarray(COCO_SIGMAS if sigmas is None else sigmas, np.float64)
    variances = (sigmas * 2) ** 2
    dx = others[:, :, 0] - keypoints[None, :, 0]
    dy = others[:, :, 1] - keypoints[None, :, 1]
    e = (dx ** 2 + dy ** 2) / variances / ((area + np.asarray(other_areas))[:, None] / 2 + np.spacing(1)) / 2
    return np.exp(-e).mean(axis=1) if e.shape[1] else np.zeros(len(others))


def oks_nms(keypoints: np.ndarray, scores: Sequence[float], areas: Sequence[float], thresh: float = 0.9,
            sigmas: Optional[np.ndarray] = None) -> List[int]:
    """Greedy OKS-NMS: indices to keep, best first; a person is dropped when its OKS with a kept one > ``thresh``."""
    keypoints = np.asarray(keypoints, np.float64)
    scores, areas = np.asarray(scores, np.float64), np.asarray(areas, np.float64)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        overlap = oks_iou(keypoints[i], keypoints[order[1:]], areas[i], areas[order[1:]], sigmas)
        order = order[np.where(overlap <= thresh)[0] + 1]
    return keep


def soft_oks_nms(keypoints: np.ndarray, scores: Sequence[float], areas: Sequence[float], thresh: float = 0.9,
                 sigmas: Optional[np.ndarray] = None, max_dets: int = 20) -> List[int]:
    """HRNet's soft OKS-NMS: Gaussian decay of the remaining scores (exp(-oks^2 / thresh)), at most ``max_dets``."""
    keypoints = np.asarray(keypoints, np.float64)
    areas = np.asarray(areas, np.float64)
    scores = np.asarray(scores, np.float64)
    order = scores.argsort()[::-1]
    scores = scores[order]
    keep = []
    while order.size > 0 and len(keep) < max_dets:
        i = order[0]
        overlap = oks_iou(keypoints[i], keypoints[order[1:]], areas[i], areas[order[1:]], sigmas)
        order, scores = order[1:], scores[1:] * np.exp(-overlap ** 2 / thresh)
        resort = scores.argsort()[::-1]
        order, scores = order[resort], scores[resort]
        keep.append(int(i))
    return keep
