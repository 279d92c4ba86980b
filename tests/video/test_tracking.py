"""IoU tracking: overlaps computed right, ids follow moving persons, new persons get new ids, old tracks expire."""

import numpy as np
import pytest

from goatpose_edge.video.tracking import IoUTracker, iou_matrix


def test_iou_matrix_known_values():
    a = [[0, 0, 10, 10], [100, 100, 5, 5]]
    b = [[5, 0, 10, 10], [0, 0, 10, 10], [200, 200, 0, 0]]
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == 1.0
    assert iou[1].tolist() == [0.0, 0.0, 0.0] and iou[0, 2] == 0.0  # a zero-area box overlaps nothing


def test_ids_follow_moving_boxes_and_swap_order():
    tracker = IoUTracker(threshold=0.3, max_age=2)
    assert tracker.update([[0, 0, 50, 100], [200, 0, 50, 100]]) == [0, 1]
    assert tracker.update([[205, 2, 50, 100], [4, 1, 50, 100]]) == [1, 0]  # order changed, ids follow the boxes
    assert tracker.update([[8, 2, 50, 100], [400, 0, 50, 100]]) == [0, 2]  # a newcomer; id 1 unseen (age 1)
    assert tracker.update([[210, 3, 50, 100]]) == [1]  # back within max_age: same id
    for _ in range(3):
        tracker.update([])
    assert tracker.update([[12, 2, 50, 100]]) == [3]  # id 0 expired after max_age frames unseen


def test_two_boxes_never_share_a_track():
    tracker = IoUTracker()
    tracker.update([[0, 0, 50, 100]])
    ids = tracker.update([[0, 0, 50, 100], [2, 0, 50, 100]])
    assert sorted(ids) == [0, 1] and len(set(ids)) == 2
    assert tracker.update(np.zeros((0, 4))) == []


def _pose(x, y, score=0.9):
    points = np.zeros((17, 3))
    points[:, 0] = x + np.linspace(0, 30, 17)
    points[:, 1] = y + np.linspace(0, 90, 17)
    points[:, 2] = score
    return points


def test_keypoints_keep_ids_where_boxes_alone_swap():
    """Two persons passing: each one's box overlaps the other's last box more than its own (IoU would swap the ids),
    but their joints are where they were: OKS keeps the ids."""
    tracker = IoUTracker(threshold=0.3)
    boxes = [[0, 0, 60, 100], [40, 0, 60, 100]]
    assert tracker.update(boxes, [_pose(10, 5), _pose(50, 5)]) == [0, 1]
    # the boxes jump to each other's place (a detector's boxes around the pair), the joints move 2 px
    assert IoUTracker().update(boxes) == [0, 1]
    ids = tracker.update([[38, 0, 60, 100], [2, 0, 60, 100]], [_pose(12, 5), _pose(52, 5)])
    assert ids == [0, 1]
    swapped = IoUTracker(threshold=0.3)
    swapped.update(boxes)
    assert swapped.update([[38, 0, 60, 100], [2, 0, 60, 100]]) == [1, 0]  # boxes alone follow the boxes
