"""Flip merge (HRNet's flip_back + one-pixel shift) and the contract-driven crop and normalisation."""

import cv2
import numpy as np
import pytest

from goatpose_edge.codec import crops_from_boxes, flip_back, flip_permutation, merge_flip, normalize_crops
from goatpose_edge.artefact.contract import COCO_FLIP_PAIRS
from goatpose_edge.variants import VARIANTS


def test_flip_permutation_swaps_pairs():
    order = flip_permutation(17, COCO_FLIP_PAIRS)
    assert order.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_flip_back_is_an_involution_and_mirrors():
    heatmaps = np.random.RandomState(0).rand(2, 17, 4, 5)
    back = flip_back(heatmaps, COCO_FLIP_PAIRS)
    assert back[1, 1, 2, 0] == heatmaps[1, 2, 2, 4] and back[0, 0, 3, 1] == heatmaps[0, 0, 3, 3]
    np.testing.assert_array_equal(flip_back(back, COCO_FLIP_PAIRS), heatmaps)


def test_merge_flip_hand_computed():
    heatmaps = np.zeros((1, 3, 1, 4))
    flipped = np.zeros((1, 3, 1, 4))
    flipped[0, 1] = [1.0, 2.0, 3.0, 4.0]  # channel 1 of the mirrored input is channel 2 of the original
    merged = merge_flip(heatmaps, flipped, [(1, 2)])
    # back[2] = [4, 3, 2, 1]; shifted right by one, column 0 kept: [4, 4, 3, 2]; averaged with zeros.
    assert merged[0, 2, 0].tolist() == [2.0, 2.0, 1.5, 1.0]
    assert not merged[0, :2].any()
    unshifted = merge_flip(heatmaps, flipped, [(1, 2)], shift=False)
    assert unshifted[0, 2, 0].tolist() == [2.0, 1.5, 1.0, 0.5]


def test_normalize_crops_is_hrnet_rgb_imagenet():
    contract = VARIANTS["goatpose-bl"].contract
    crop = np.zeros((1, 2, 2, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 10, 20, 30  # B, G, R
    batch = normalize_crops(crop, contract)
    assert batch.shape == (1, 3, 2, 2) and batch.dtype == np.float32 and batch.flags["C_CONTIGUOUS"]
    expected = [(30 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224, (10 / 255 - 0.406) / 0.225]  # R, G, B
    assert batch[0, :, 0, 0].tolist() == pytest.approx(expected, rel=1e-5)


def test_crop_of_a_real_person(coco_persons):
    contract = VARIANTS["goatpose-bl"].contract
    path, box = coco_persons[0]
    image = cv2.imread(path)
    batch = crops_from_boxes(image, [box, box], contract)
    assert batch.shape == (2, 3, 256, 192) and np.array_equal(batch[0], batch[1])
    # The box centre lands on the crop centre: same pixel colour up to bilinear interpolation.
    cx, cy = int(box[0] + box[2] / 2), int(box[1] + box[3] / 2)
    rgb = image[cy, cx, ::-1].astype(np.float32)
    centre = batch[0, :, 128, 96] * np.array(contract.std) + np.array(contract.mean)
    assert np.abs(centre - rgb).max() < 25
    assert crops_from_boxes(image, [], contract).shape == (0, 3, 256, 192)
