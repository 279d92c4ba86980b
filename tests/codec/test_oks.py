"""Rescoring and (soft) OKS-NMS as HRNet's COCO evaluation does them."""

import numpy as np
import pytest

from goatpose_edge.artefact.contract import COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES, COCO_SIGMAS
from goatpose_edge.codec import oks_iou, oks_nms, rescore, soft_oks_nms


def _golden_data():
    rs = np.random.RandomState(11)
    for _ in range(6):
        base = rs.rand(2, 17, 3) * [200, 300, 1]
        kp = np.stack([base[i % 2] + rs.randn(17, 3) * [[3, 3, 0]] * (1 + i) for i in range(6)])
        yield kp, rs.rand(6), rs.rand(6) * 20000 + 500


# (oks_nms 0.9, oks_nms 0.5, soft_oks_nms 0.9) of HRNet's lib/nms/nms.py on _golden_data().
OFFICIAL_KEEP = [
    ([2, 0, 3, 1, 5, 4], [2, 0, 3, 1, 5, 4], [2, 0, 3, 1, 5, 4]),
    ([3, 4, 5, 0, 1, 2], [3, 4, 5, 0], [3, 4, 5, 0, 1, 2]),
    ([0, 4, 3, 2, 1, 5], [0, 4, 3, 1, 5], [0, 4, 3, 2, 1, 5]),
    ([1, 0, 3, 4, 2, 5], [1, 0, 5], [1, 0, 3, 4, 5, 2]),
    ([2, 1, 4, 0, 3, 5], [2, 1, 4, 3, 5], [2, 1, 4, 0, 3, 5]),
    ([2, 4, 1, 0, 3, 5], [2, 4, 1, 5], [2, 4, 1, 0, 3, 5]),
]


@pytest.mark.parametrize("case", range(6))
def test_nms_equals_hrnet(case):
    kp, scores, areas = list(_golden_data())[case]
    assert (oks_nms(kp, scores, areas, 0.9), oks_nms(kp, scores, areas, 0.5),
            soft_oks_nms(kp, scores, areas, 0.9)) == OFFICIAL_KEEP[case]


def test_identical_persons_collapse_to_the_best():
    person = np.random.RandomState(0).rand(17, 3) * 100
    kp = np.stack([person, person, person + [[500, 0, 0]]])
    assert oks_nms(kp, [0.5, 0.9, 0.1], [1000, 1000, 1000]) == [1, 2]
    assert oks_iou(person, kp[:2], 1000, np.array([1000, 1000])).tolist() == pytest.approx([1.0, 1.0])
    assert oks_nms(np.zeros((0, 17, 3)), [], []) == []


def test_rescore_is_box_score_times_mean_visible_keypoint_score():
    keypoint_scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.0]])
    assert rescore(np.array([0.8, 1.0]), keypoint_scores).tolist() == pytest.approx([0.8 * 0.7, 0.0])


def test_sigmas_come_with_the_keypoint_layout():
    assert len(COCO_SIGMAS) == len(COCO_KEYPOINT_NAMES)
    assert (COCO_SIGMAS[0], COCO_SIGMAS[11]) == pytest.approx((0.026, 0.107))  # nose, left hip (pycocotools)
    assert all(COCO_SIGMAS[left] == COCO_SIGMAS[right] for left, right in COCO_FLIP_PAIRS)
