"""Heatmap decode against the official HRNet / DarkPose post-processing; encode -> decode round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from goatpose_edge.codec import (PIXEL_STD, HeatmapCodec, box_to_center_scale, dark_refine, decode_heatmaps,
                                 encode_keypoints, get_max_preds, quarter_offset)
from goatpose_edge.variants import VARIANTS


def edge_cases():
    """2 persons x 6 maps of 16x12: interior, left border, corner, the (1, 1) quirk, flat, negative; noisy maps."""
    n, k, h, w = 2, 6, 16, 12
    y, x = np.mgrid[0:h, 0:w]

    def g(cx, cy, s=1.5):
        return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))

    hm = np.zeros((n, k, h, w), np.float32)
    hm[0, 0], hm[0, 1], hm[0, 2], hm[0, 3] = g(5.3, 7.8), g(0.0, 4.2), g(11.0, 15.0), g(1.0, 1.0)
    hm[0, 4], hm[0, 5] = 0.0, -g(4, 4) - 0.1
    noise = np.random.RandomState(3).rand(k, h, w).astype(np.float32)
    hm[1] = noise * 0.2 + 0.8 * np.stack([g(2 + i * 1.7, 3 + i * 2.1, 1.0 + 0.3 * i) for i in range(k)])
    hm[1, 5] = g(10.6, 2.4)
    center = np.array([[120.5, 210.0], [300.0, 40.0]], np.float32)
    scale = np.array([[1.1, 1.4667], [0.6, 0.8]], np.float32)
    return hm, center, scale


# Outputs of the official code on edge_cases(): HRNet get_final_preds (POST_PROCESS on) and the maxima; DarkPose's
# get_max_preds + gaussian_blur(kernel 5) + log + taylor, in heatmap coordinates.
OFFICIAL_QUARTER = [
    [[106.75, 205.416672], [10.5, 136.666672], [212.166672, 338.333344], [28.833334, 81.666664], [10.5, 63.333332],
     [10.5, 63.333332]],
    [[257.5, -12.500003], [272.5, 12.499998], [292.5, 27.5], [312.5, 52.5], [322.5, 77.5], [350.0, -20.000004]],
]
OFFICIAL_MAXVALS = [0.9715244, 0.9911505, 1.0, 1.0, 0.0, -0.1, 0.8723130, 0.8614072, 0.9378037, 0.8659431, 0.8904987,
                    0.9313584]
OFFICIAL_DARK_HEATMAP_COORDS = [
    [[5.298994, 7.800614], [0.0, 4.0], [11.0, 15.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]],
    [[1.933067, 2.95726], [3.729344, 5.240116], [5.405516, 7.119846], [7.065521, 9.403932], [8.779389, 11.354765],
     [11.0, 2.0]],
]


def test_quarter_decode_equals_hrnet_including_edge_cases():
    hm, center, scale = edge_cases()
    keypoints, scores = decode_heatmaps(hm, center, scale, "quarter")
    np.testing.assert_allclose(keypoints, OFFICIAL_QUARTER, atol=1e-3)
    np.testing.assert_allclose(scores.ravel(), OFFICIAL_MAXVALS, atol=1e-6)
    assert scores.shape == (2, 6, 1) and keypoints.shape == (2, 6, 2)


def test_dark_refinement_equals_darkpose():
    hm, _, _ = edge_cases()
    coords = dark_refine(hm, get_max_preds(hm)[0], blur_kernel=5)
    np.testing.assert_allclose(coords, OFFICIAL_DARK_HEATMAP_COORDS, atol=1e-5)


def test_decode_leaves_its_input_alone_and_rejects_bad_options():
    hm, center, scale = edge_cases()
    before = hm.copy()
    decode_heatmaps(hm, center, scale, "dark")
    assert np.array_equal(hm, before)
    with pytest.raises(ValueError, match="post_process"):
        decode_heatmaps(hm, center, scale, "udp")


def _round_trip_errors(post_process, seed, count=200, margin=8):
    """Encode random sub-pixel keypoints into 64x48 maps, decode, return errors in heatmap pixels."""
    rs = np.random.RandomState(seed)
    points = np.stack([rs.uniform(margin, 192 - margin, count), rs.uniform(margin, 256 - margin, count)], axis=1)
    heatmaps, weights = encode_keypoints(points, np.ones(count), (64, 48), stride=4)
    assert weights.all()
    coords, _ = get_max_preds(heatmaps[None])
    if post_process == "quarter":
        coords = quarter_offset(heatmaps[None], coords)
    else:
        coords = dark_refine(heatmaps[None], coords)
    return np.abs(coords[0] - points / 4).max(axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_quarter_within_0_3_px(seed):
    assert _round_trip_errors("quarter", seed).max() <= 0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_dark_is_far_finer_inside_the_map(seed):
    # DARK refines where its 5x5 stencil fits and the truncated Gaussian is whole (3 heatmap px from the border).
    errors = _round_trip_errors("dark", seed, margin=16)
    assert errors.max() <= 0.1 and np.median(errors) <= 0.01


def test_hrnet_encoding_rounds_the_centre_and_drops_far_keypoints():
    heatmaps, weights = encode_keypoints(np.array([[41.0, 81.0], [500.0, 10.0]]), np.array([1, 1]), (64, 48), 4,
                                         unbiased=False)
    peak = np.unravel_index(heatmaps[0].argmax(), heatmaps[0].shape)
    assert peak == (20, 10) and heatmaps[0, 20, 10] == 1.0  # 81/4 = 20.25 -> 20, 41/4 = 10.25 -> 10
    assert weights.ravel().tolist() == [1.0, 0.0] and not heatmaps[1].any()
    assert np.count_nonzero(heatmaps[0]) == 13 * 13  # the (6 sigma + 1)^2 patch


@settings(max_examples=60, deadline=None)
@given(x=st.floats(0, 47), y=st.floats(0, 63), post=st.sampled_from(["quarter", "dark", None]))
def test_property_decoded_point_stays_near_an_encoded_one_and_inside(x, y, post):
    heatmaps, _ = encode_keypoints(np.array([[x * 4, y * 4]]), np.array([1]), (64, 48), 4)
    center, scale = box_to_center_scale((0, 0, 192, 256), 0.75, padding=1.0)
    keypoints, scores = decode_heatmaps(heatmaps[None], center[None], scale[None], post)
    # heatmap pixel -> image pixel is x4 here; quarter/argmax can be off by half a heatmap pixel at most
    assert np.abs(keypoints[0, 0] - [x * 4, y * 4]).max() <= 4 * 0.5 + 1e-3
    assert 0.6 < scores[0, 0, 0] <= 1.0


@settings(max_examples=40, deadline=None)
@given(value=st.floats(-5, 0), post=st.sampled_from(["quarter", "dark", None]))
def test_property_flat_or_negative_maps_decode_to_the_crop_origin(value, post):
    heatmaps = np.full((1, 2, 8, 6), value, np.float32)
    keypoints, scores = decode_heatmaps(heatmaps, np.array([[50.0, 60.0]]), np.array([[0.3, 0.4]]), post)
    assert np.isfinite(keypoints).all() and (scores == value).all()
    origin = keypoints[0, 0]
    assert np.allclose(keypoints[0], origin)  # both maps -> heatmap (0, 0) -> the crop's top-left corner
    assert np.allclose(origin, [50 - 30, 60 - 40])


# HeatmapCodec: encode -> decode in image pixels, through three crops of different size and shape. Worst error over
# 3 persons x 17 keypoints at least 4 heatmap px inside the crop, in heatmap pixels: the argmax is off by up to half
# a pixel, the quarter step by up to a quarter (measured 0.250 at most); DARK's measured worst is 0.031, its median
# 0.0003.
ROUND_TRIP_BOUND = {"none": 0.5, "quarter": 0.25, "dark": 0.035}
ROUND_TRIP_BOXES = [(40, 30, 120, 200), (300, 50, 260, 180), (10, 400, 50, 60)]  # (x, y, w, h) image pixels


def _codec_round_trip(codec, contract, seed):
    """(keypoints [3, 17, 2] encoded, decoded keypoints, scores, weights, heatmap pixel size [3] in image pixels)."""
    centers, scales = zip(*(box_to_center_scale(box, contract.aspect_ratio) for box in ROUND_TRIP_BOXES))
    center, scale = np.stack(centers), np.stack(scales)  # [3, 2] each
    crop_px = scale * PIXEL_STD  # [3, 2] crop (w, h) in image pixels
    margin = 4 / contract.heatmap_size[1]  # 4 heatmap pixels, as a fraction of the crop
    fractions = np.random.RandomState(seed).uniform(margin, 1 - margin, (3, 17, 2))
    keypoints = center[:, None] - crop_px[:, None] / 2 + fractions * crop_px[:, None]  # [3, 17, 2]
    heatmaps, weights = codec.encode(keypoints, np.ones((3, 17)), center, scale)
    decoded, scores = codec.decode(heatmaps, center, scale)
    return keypoints, decoded, scores, weights, crop_px[:, 0] / contract.heatmap_size[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("post_process", ["none", "quarter", "dark"])
@pytest.mark.parametrize("variant", ["goatpose-bl", "goatpose-bh"])
def test_codec_round_trip_in_image_pixels(variant, post_process, seed):
    contract = VARIANTS[variant].contract
    codec = HeatmapCodec.from_contract(contract, post_process=post_process)
    keypoints, decoded, scores, weights, heatmap_px = _codec_round_trip(codec, contract, seed)
    assert decoded.shape == (3, 17, 2) and scores.shape == weights.shape == (3, 17, 1) and weights.all()
    errors = np.abs(decoded - keypoints).max(axis=2) / heatmap_px[:, None]  # [3, 17] heatmap pixels
    assert errors.max() <= ROUND_TRIP_BOUND[post_process] + 1e-3
    if post_process == "dark":
        assert np.median(errors) <= 0.001
    assert scores.min() > 0.9  # the peak of a unit Gaussian sampled within half a pixel of its centre


def test_codec_encode_weights_and_shapes():
    contract = VARIANTS["goatpose-bl"].contract
    codec = HeatmapCodec.from_contract(contract)
    assert (codec.input_size, codec.heatmap_size, codec.stride, codec.sigma) == ((256, 192), (64, 48), 4, 2.0)
    center, scale = box_to_center_scale((100, 100, 60, 80), contract.aspect_ratio)
    keypoints = np.array([[[130.0, 140.0], [130.0, 140.0], [2000.0, 140.0]]])  # [1, 3, 2]; the last far outside
    heatmaps, weights = codec.encode(keypoints, np.array([[1, 0, 1]]), center[None], scale[None])
    assert heatmaps.shape == (1, 3, 64, 48) and heatmaps.dtype == weights.dtype == np.float32
    assert weights.ravel().tolist() == [1.0, 0.0, 0.0] and heatmaps[0, 0].max() > 0.9
    assert not heatmaps[0, 1:].any()  # unlabelled and outside: no target


def test_codec_options_are_checked():
    contract = VARIANTS["goatpose-bl"].contract
    assert HeatmapCodec.from_contract(contract, post_process=None).post_process == "none"
    with pytest.raises(ValueError, match="post_process"):
        HeatmapCodec.from_contract(contract, post_process="udp")
    with pytest.raises(ValueError, match="integer stride"):
        HeatmapCodec((256, 192), (64, 50))
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec((256, 192), (64, 48), sigma=0)
    with pytest.raises(ValueError, match=r"\[N, K, 64, 48\]"):  # a runner whose output is not the contract's
        HeatmapCodec.from_contract(contract).decode(np.zeros((1, 17, 48, 64), np.float32), np.zeros((1, 2)),
                                                    np.ones((1, 2)))
