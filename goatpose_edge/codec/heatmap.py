"""Heatmap encode/decode, HRNet's way (``lib/core/inference.py``) with DARK as an option.

Shapes: heatmaps [N, K, h, w]; ``center`` [N, 2] and ``scale`` [N, 2] of each person's crop (HRNet units); keypoints
[N, K, 2] in original-image pixels; scores [N, K, 1] = the heatmap maxima. Heatmap coordinates are input-crop pixels
divided by the contract's heatmap stride.

Decoding (``decode_heatmaps``):
    "quarter"  argmax, then a quarter-pixel step toward the higher neighbour (HRNet's default POST_PROCESS)
    "dark"     argmax, then DARK's Taylor refinement on the log of the Gaussian-blurred map (Zhang et al. 2020,
               ``ilovepose/DarkPose``), blur kernel 11 for 64x48 maps
    None       plain argmax
A map whose maximum is <= 0 yields (0, 0) in heatmap coordinates, as in HRNet, with that score.

Encoding (``encode_keypoints``): a Gaussian (sigma 2 at 64x48) per visible keypoint, with target weight 0 for
invisible keypoints and those whose 3-sigma window misses the map. ``unbiased=True`` (default) centres it at the
sub-pixel position (mmpose's unbiased encoding, so that encode -> decode round-trips within a quarter pixel);
``unbiased=False`` rounds the centre as HRNet's ``generate_target`` does.
"""

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from goatpose_edge.codec.transforms import get_affine_transform

POST_PROCESS = ("quarter", "dark", None)


def get_max_preds(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Argmax per map: (coords [N, K, 2] float32 in heatmap pixels, maxvals [N, K, 1]); coords 0 where max <= 0."""
    n, k, _, width = heatmaps.shape
    flat = heatmaps.reshape((n, k, -1))
    idx = np.argmax(flat, 2).reshape((n, k, 1))
    maxvals = np.amax(flat, 2).reshape((n, k, 1))
    coords = np.tile(idx, (1, 1, 2)).astype(np.float32)
    coords[:, :, 0] = coords[:, :, 0] % width
    coords[:, :, 1] = np.floor(coords[:, :, 1] / width)
    coords *= np.tile(np.greater(maxvals, 0.0), (1, 1, 2)).astype(np.float32)
    return coords, maxvals


def quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """HRNet's post-processing: move each peak 0.25 px toward its higher neighbour, in x and y independently.

    Like HRNet, only peaks with 1 < px < w - 1 and 1 < py < h - 1 move (so column/row 1 never does).
    """
    _, _, height, width = heatmaps.shape
    coords = coords.copy()
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)  # [N, K]
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > 1) & (px < width - 1) & (py > 1) & (py < height - 1)
    n_idx, k_idx = np.nonzero(inside)
    x, y = px[inside], py[inside]
    dx = heatmaps[n_idx, k_idx, y, x + 1] - heatmaps[n_idx, k_idx, y, x - 1]
    dy = heatmaps[n_idx, k_idx, y + 1, x] - heatmaps[n_idx, k_idx, y - 1, x]
    coords[n_idx, k_idx] += np.sign(np.stack([dx, dy], axis=-1)) * 0.25
    return coords


def _blur_like_dark(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """DarkPose's gaussian_blur: zero-padded GaussianBlur per map, rescaled to the map's original maximum."""
    border = (kernel - 1) // 2
    out = np.empty(heatmaps.shape, np.float64)
    for index in np.ndindex(*heatmaps.shape[:2]):
        hm = heatmaps[index]
        padded = np.zeros((hm.shape[0] + 2 * border, hm.shape[1] + 2 * border))
        padded[border:-border, border:-border] = hm
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
        peak = blurred.max()
        # DarkPose divides by the blurred maximum; a flat or negative map would give inf/nan, so it is left as is.
        out[index] = blurred * (hm.max() / peak) if peak > 0 and hm.max() > 0 else blurred
    return out


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """DARK: one Newton step on log(blurred heatmap) from the argmax, where the 5x5 neighbourhood fits the map."""
    _, _, height, width = heatmaps.shape
    logs = np.log(np.maximum(_blur_like_dark(heatmaps, blur_kernel), 1e-10))
    coords = coords.astype(np.float64).copy()
    for n, k in np.ndindex(*coords.shape[:2]):
        px, py = int(coords[n, k, 0]), int(coords[n, k, 1])
        if not (1 < px < width - 2 and 1 < py < height - 2):
            continue
        hm = logs[n, k]
        dx = 0.5 * (hm[py, px + 1] - hm[py, px - 1])
        dy = 0.5 * (hm[py + 1, px] - hm[py - 1, px])
        dxx = 0.25 * (hm[py, px + 2] - 2 * hm[py, px] + hm[py, px - 2])
        dxy = 0.25 * (hm[py + 1, px + 1] - hm[py - 1, px + 1] - hm[py + 1, px - 1] + hm[py - 1, px - 1])
        dyy = 0.25 * (hm[py + 2, px] - 2 * hm[py, px] + hm[py - 2, px])
        det = dxx * dyy - dxy ** 2
        if det != 0:
            hessian_inv = np.array([[dyy, -dxy], [-dxy, dxx]]) / det
            coords[n, k] -= hessian_inv @ np.array([dx, dy])
    return coords.astype(np.float32)


def transform_preds(coords: np.ndarray, center: Sequence[float], scale: Sequence[float],
                    heatmap_size: Sequence[int]) -> np.ndarray:
    """Heatmap coordinates [K, 2] of one person -> original-image pixels [K, 2] (``heatmap_size`` is (w, h))."""
    trans = get_affine_transform(center, scale, 0, heatmap_size, inv=True)
    return coords[:, :2] @ trans[:, :2].T + trans[:, 2]


def decode_heatmaps(heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    post_process: Optional[str] = "quarter",
                    blur_kernel: int = 11) -> Tuple[np.ndarray, np.ndarray]:
    """Heatmaps [N, K, h, w] -> (keypoints [N, K, 2] in image pixels, scores [N, K, 1])."""
    if post_process not in POST_PROCESS:
        raise ValueError("post_process must be one of {}, got {!r}".format(POST_PROCESS, post_process))
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError("heatmaps must be [N, K, h, w], got shape {}".format(heatmaps.shape))
    coords, maxvals = get_max_preds(heatmaps)
    if post_process == "quarter":
        coords = quarter_offset(heatmaps, coords)
    elif post_process == "dark":
        coords = dark_refine(heatmaps, coords, blur_kernel)
    size = (heatmaps.shape[3], heatmaps.shape[2])
    keypoints = np.zeros(coords.shape, np.float64)
    for i in range(coords.shape[0]):
        keypoints[i] = transform_preds(coords[i], center[i], scale[i], size)
    return keypoints, maxvals


def encode_keypoints(keypoints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int], stride: int,
                     sigma: float = 2.0, unbiased: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian targets for one person: keypoints [K, 2] in input-crop pixels, visible [K] ->
    (heatmaps [K, h, w] float32, target_weight [K, 1] float32); ``heatmap_size`` is (h, w)."""
    height, width = heatmap_size
    num = keypoints.shape[0]
    targets = np.zeros((num, height, width), np.float32)
    weights = np.asarray(visible, np.float32).reshape(num, 1).copy()
    weights = (weights > 0).astype(np.float32)
    radius = sigma * 3
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    for k in range(num):
        if weights[k, 0] == 0:
            continue
        mu_x, mu_y = keypoints[k, 0] / stride, keypoints[k, 1] / stride
        if not unbiased:
            mu_x, mu_y = int(mu_x + 0.5), int(mu_y + 0.5)
        # HRNet's visibility rule: the 3-sigma window around the (rounded) centre must touch the map.
        cx, cy = int(mu_x + 0.5), int(mu_y + 0.5)
        if cx - radius >= width or cy - radius >= height or cx + radius + 1 < 0 or cy + radius + 1 < 0:
            weights[k, 0] = 0
            continue
        gaussian = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma ** 2))
        window = (np.abs(xs - cx) <= radius) & (np.abs(ys - cy) <= radius)  # HRNet pastes a (6 sigma + 1)^2 patch
        targets[k] = np.where(window, gaussian, 0.0)
    return targets, weights
