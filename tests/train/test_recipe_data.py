"""Recipe and data: the schedule, the loss on hand-made numbers, and crops whose targets sit on the real pixels
through every augmentation (flip, scale, rotation, half body)."""

import os

import cv2
import numpy as np
import pytest
import torch

from goatpose_edge.codec import get_max_preds
from goatpose_edge.train.data import NO_AUGMENT, Augment, CocoKeypoints, make_sample
from goatpose_edge.train.recipe import JointsMSELoss, Recipe
from goatpose_edge.variants import VARIANTS

CONTRACT = VARIANTS["goatpose-bl"].contract


def test_schedule_is_the_papers():
    recipe = Recipe()
    assert recipe.epochs == 280 and recipe.nam_penalty == 1e-4
    assert [recipe.lr_at(e) for e in (0, 169)] == [1e-3, 1e-3]
    assert recipe.lr_at(170) == pytest.approx(4e-4) and recipe.lr_at(229) == pytest.approx(4e-4)
    assert recipe.lr_at(230) == pytest.approx(1.6e-4) and recipe.lr_at(279) == pytest.approx(6.4e-5)


def test_joints_mse_with_target_weights():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[4.0, 4.0], [4.0, 4.0]]]])
    both = JointsMSELoss()(pred, target, torch.ones(1, 2, 1))
    assert float(both) == pytest.approx(0.5 * (0.25 + 16.0) / 2)
    first_only = JointsMSELoss()(pred, target, torch.tensor([[[1.0], [0.0]]]))
    assert float(first_only) == pytest.approx(0.5 * 0.25 / 2)  # a weight-0 joint adds nothing


def _dots_image(joints, shape=(480, 640)):
    """A black image with a small white dot at every labelled joint (BGR), to find the joints again in the crop."""
    image = np.zeros(shape + (3,), np.uint8)
    for x, y, v in joints:
        if v > 0:
            cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("augment", [NO_AUGMENT, Augment(flip=1.0, rotation_prob=1.0, half_body_prob=0.0),
                                     Augment(flip=0.0, rotation_prob=1.0, half_body_prob=1.0)],
                         ids=["plain", "flip+scale+rotation", "half-body+rotation"])
def test_targets_sit_on_the_pixels_of_their_joints(augment):
    rng = np.random.default_rng(3)
    joints = np.zeros((17, 3), np.float32)
    joints[:, 0] = np.linspace(250, 390, 17)
    joints[:, 1] = np.linspace(120, 400, 17)
    joints[:, 2] = 2
    joints[4, 2] = 0  # an unlabelled joint
    box = [220, 100, 200, 320]
    for seed in range(4):
        rng = np.random.default_rng(seed)
        image = _dots_image(joints)
        crop, target, weight = make_sample(image, box, joints, CONTRACT, augment, rng)
        assert crop.shape == (3, 256, 192) and target.shape == (17, 64, 48) and weight.shape == (17, 1)
        unlabelled = np.flatnonzero(weight[:, 0] == 0)  # joint 4 (3 after a flip: the ears swap), plus joints a
        assert {3, 4} & set(unlabelled) and all(target[k].max() == 0 for k in unlabelled)  # crop left out
        assert len(unlabelled) == 1 or augment.half_body_prob or augment.scale_factor
        brightness = crop.sum(axis=0)  # normalised input: dots are far brighter than black
        peaks, _ = get_max_preds(target[None])
        for k in np.flatnonzero(weight[:, 0]):
            if not (0 < peaks[0, k, 0] < 47 and 0 < peaks[0, k, 1] < 63):
                continue  # a joint just outside the crop keeps the part of its Gaussian inside (HRNet's rule)
            x, y = peaks[0, k] * 4 + 1.5  # heatmap cell -> input pixel centre
            window = brightness[max(0, int(y) - 4):int(y) + 5, max(0, int(x) - 4):int(x) + 5]
            assert window.max() > brightness.min() + 5, (seed, k)  # a dot under every target peak


def test_flip_swaps_left_and_right():
    joints = np.zeros((17, 3), np.float32)
    joints[:, 2] = 2
    joints[:, 0], joints[:, 1] = 300, np.linspace(150, 350, 17)
    joints[5, 0], joints[6, 0] = 280, 330  # left shoulder left of the right one in the image
    image = _dots_image(joints)
    _, plain, _ = make_sample(image, [240, 120, 140, 260], joints, CONTRACT, NO_AUGMENT, np.random.default_rng(0))
    _, flipped, _ = make_sample(image, [240, 120, 140, 260], joints, CONTRACT, Augment(
        flip=1.0, scale_factor=0.0, rotation_prob=0.0, half_body_prob=0.0), np.random.default_rng(0))
    (p,), (f,) = get_max_preds(plain[None])[0], get_max_preds(flipped[None])[0]
    # after the flip, the left shoulder's target is where the mirrored right shoulder is, and vice versa
    assert f[5][0] == pytest.approx(47 - p[6][0], abs=1) and f[6][0] == pytest.approx(47 - p[5][0], abs=1)


def test_coco_sample_dataset(shared_data):
    root = os.path.join(shared_data, "coco_sample")
    dataset = CocoKeypoints(os.path.join(root, "test_coco.json"), root, CONTRACT, Augment(), seed=1)
    assert len(dataset) == 12
    first = dataset[0]
    again = dataset[0]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # same (seed, epoch, index): same sample
    dataset.set_epoch(1)
    assert not np.array_equal(dataset[0][0], first[0])  # another epoch, another augmentation
