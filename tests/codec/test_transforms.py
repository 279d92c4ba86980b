"""Box -> center/scale and the crop affine, against HRNet's conventions and its own outputs."""

import numpy as np
import pytest

from goatpose_edge.codec import PIXEL_STD, affine_transform, box_to_center_scale, get_affine_transform

# (center, scale, rot, output_size (W, H) as HRNet takes it) -> HRNet's get_affine_transform (forward, inverse),
# computed with the official lib/utils/transforms.py.
OFFICIAL_AFFINES = [
    (((140.5, 220.25), (1.2, 1.6), 0, (192, 256)),
     [[7.99999949e-01, -0.0, -1.63999929e+01], [-5.05724367e-17, 7.99999949e-01, -4.81999888e+01]],
     [[1.25000008, -0.0, 20.49999237], [0.0, 1.25000008, 60.24998983]]),
    (((10.0, 5.0), (0.3, 0.4), 30, (288, 384)),
     [[4.15692162, 2.39999961, 90.43078572], [-2.39999991, 4.15692162, 195.21539102]],
     [[0.18042197, -0.10416667, 4.01923561], [0.10416668, 0.18042197, -44.64102109]]),
    (((640.0, 360.0), (5.0, 6.6666), -45, (48, 64)),
     [[0.03394112, -0.03394113, 14.4964858], [0.03394112, 0.03394113, -1.94112457]],
     [[14.73139191, 14.73139191, -184.95794678], [-14.73139127, 14.73139127, 242.14886983]]),
]


@pytest.mark.parametrize("args, forward, inverse", OFFICIAL_AFFINES)
def test_affine_equals_hrnet(args, forward, inverse):
    center, scale, rot, (width, height) = args
    center, scale, size = np.array(center, np.float32), np.array(scale, np.float32), (height, width)  # ours: (H, W)
    np.testing.assert_allclose(get_affine_transform(center, scale, rot, size), forward, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(get_affine_transform(center, scale, rot, size, inv=True), inverse, rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("box, center, scale", [
    ((100, 50, 60, 120), (130, 110), (90 / 200 * 1.25, 120 / 200 * 1.25)),  # tall: widened to 3:4
    ((0, 0, 300, 100), (150, 50), (300 / 200 * 1.25, 400 / 200 * 1.25)),  # wide: heightened
    ((10, 20, 75, 100), (47.5, 70), (75 / 200 * 1.25, 100 / 200 * 1.25)),  # already 3:4
])
def test_box_to_center_scale(box, center, scale):
    c, s = box_to_center_scale(box, aspect_ratio=192 / 256)
    assert c.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_allclose(c, center, rtol=1e-6)
    np.testing.assert_allclose(s, scale, rtol=1e-6)


def test_crop_maps_the_padded_box_onto_the_input():
    center, scale = box_to_center_scale((100, 50, 60, 120), 192 / 256)
    trans = get_affine_transform(center, scale, 0, (256, 192))
    # The padded box (1.25 x 3:4 box around the centre) spans the crop exactly.
    half = scale * PIXEL_STD / 2
    corners = np.array([center - half, center + half])
    np.testing.assert_allclose(affine_transform(corners, trans), [[0, 0], [192, 256]], atol=1e-3)
    inverse = get_affine_transform(center, scale, 0, (256, 192), inv=True)
    np.testing.assert_allclose(affine_transform(affine_transform(corners, trans), inverse), corners, atol=1e-3)
