"""Flip test, HRNet's way (``flip_back`` in ``lib/utils/transforms.py``, the flip test in ``lib/core/function.py``).

Heatmaps are [N, K, h, w]; ``flip_pairs`` are 0-based (left, right) keypoint pairs.
"""

from typing import Sequence, Tuple

import numpy as np


def flip_permutation(num_keypoints: int, flip_pairs: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Channel order after a horizontal flip: index [K] with every (left, right) pair swapped."""
    order = np.arange(num_keypoints)
    for left, right in flip_pairs:
        order[left], order[right] = right, left
    return order


def flip_back(heatmaps: np.ndarray, flip_pairs: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Heatmaps of a horizontally flipped input [N, K, h, w] -> heatmaps in the original frame [N, K, h, w]."""
    flipped = heatmaps[:, :, :, ::-1]
    return np.ascontiguousarray(flipped[:, flip_permutation(heatmaps.shape[1], flip_pairs)])


def merge_flip(heatmaps: np.ndarray, flipped_heatmaps: np.ndarray, flip_pairs: Sequence[Tuple[int, int]],
               shift: bool = True) -> np.ndarray:
    """Average [N, K, h, w] heatmaps with those of the flipped input, after ``flip_back`` and, as HRNet's
    SHIFT_HEATMAP does, a one-pixel shift to the right (column 0 keeps its value)."""
    back = flip_back(flipped_heatmaps, flip_pairs)
    if shift:
        back[:, :, :, 1:] = back[:, :, :, :-1].copy()
    return (heatmaps + back) * 0.5
