"""Heatmap encode/decode, HRNet's way (``lib/core/inference.py``, ``generate_target``) with DARK as an option:
``HeatmapCodec``, the object every stage uses, and the pure numpy helpers it is made of.

Shapes: N persons, K keypoints, network input (H, W), heatmaps [N, K, h, w] with (h, w) = (H, W) / stride; sizes are
(H, W) at every public function (``input_size``, ``heatmap_size``), points (x, y). ``center`` [N, 2] (x, y) and
``scale`` [N, 2] (w, h) of each person's crop (``box_to_center_scale``, HRNet units); keypoints [N, K, 2] (x, y) in
original-image pixels; scores [N, K, 1] = the heatmap maxima. Heatmap coordinates are input-crop pixels divided by
the stride.

Decoding (``decode_heatmaps``, ``HeatmapCodec.decode``), ``post_process``:
    "quarter"  argmax, then a quarter-pixel step toward the higher neighbour (HRNet's default POST_PROCESS)
    "dark"     argmax, then DARK's Taylor refinement on the log of the Gaussian-blurred map (Zhang et al. 2020,
               ``ilovepose/DarkPose``), blur kernel 11 for 64x48 maps
    "none"     plain argmax (``None`` means the same)
A map whose maximum is <= 0 yields (0, 0) in heatmap coordinates, as in HRNet, with that score.

Encoding (``encode_keypoints``, ``HeatmapCodec.encode``): a Gaussian (sigma 2 at 64x48) per visible keypoint, with
target weight 0 for invisible keypoints and those whose 3-sigma window misses the map. ``unbiased=True`` (default)
centres it at the sub-pixel position (mmpose's unbiased encoding, so that encode -> decode round-trips within a
quarter pixel); ``unbiased=False`` rounds the centre as HRNet's ``generate_target`` does.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.codec.transforms import affine_transform, get_affine_transform

#: Decoding refinements; ``None`` is accepted for "none".
POST_PROCESS = ("quarter", "dark", "none")

#: Gaussian sigma of the training targets, heatmap pixels (HRNet's and the paper's 2; HRNet's 384x288 configs use 3).
DEFAULT_SIGMA = 2.0


def _post_process_name(post_process: Optional[str]) -> str:
    name = "none" if post_process is None else post_process
    if name not in POST_PROCESS:
        raise ValueError("post_process must be one of {} (or None), got {!r}".format(POST_PROCESS, post_process))
    return name


def get_max_preds(heatmaps: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Argmax per map of heatmaps [N, K, h, w]: (coords [N, K, 2] (x, y) float32 in heatmap pixels, maxvals
    [N, K, 1]); coords 0 where max <= 0."""
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
    """HRNet's post-processing: move each peak coords [N, K, 2] (heatmap pixels) of heatmaps [N, K, h, w] 0.25 px
    toward its higher neighbour, in x and y independently -> [N, K, 2].

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
    """DarkPose's gaussian_blur of heatmaps [N, K, h, w] -> float64 [N, K, h, w]: zero-padded GaussianBlur per map,
    rescaled to the map's original maximum."""
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
    """DARK: one Newton step on log(blurred heatmap) from the argmax coords [N, K, 2] (heatmap pixels) of heatmaps
    [N, K, h, w], where the 5x5 neighbourhood fits the map -> float32 [N, K, 2]."""
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
    """Heatmap coordinates [K, 2] (x, y) of one person, on a ``heatmap_size`` (h, w) grid -> original-image pixels
    [K, 2] float64, through the crop of ``center`` [2] / ``scale`` [2]."""
    trans = get_affine_transform(center, scale, 0, heatmap_size, inv=True)
    return coords[:, :2] @ trans[:, :2].T + trans[:, 2]


def decode_heatmaps(heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    post_process: Optional[str] = "quarter",
                    blur_kernel: int = 11) -> Tuple[np.ndarray, np.ndarray]:
    """Heatmaps [N, K, h, w] of the crops ``center`` [N, 2] / ``scale`` [N, 2] -> (keypoints [N, K, 2] float64 in
    image pixels, scores [N, K, 1] float32); HRNet's ``get_final_preds`` with a choice of refinement."""
    post_process = _post_process_name(post_process)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError("heatmaps must be [N, K, h, w], got shape {}".format(heatmaps.shape))
    coords, maxvals = get_max_preds(heatmaps)
    if post_process == "quarter":
        coords = quarter_offset(heatmaps, coords)
    elif post_process == "dark":
        coords = dark_refine(heatmaps, coords, blur_kernel)
    keypoints = np.zeros(coords.shape, np.float64)
    for i in range(coords.shape[0]):
        keypoints[i] = transform_preds(coords[i], center[i], scale[i], heatmaps.shape[2:])
    return keypoints, maxvals


def encode_keypoints(keypoints: np.ndarray, visible: np.ndarray, heatmap_size: Sequence[int], stride: int,
                     sigma: float = DEFAULT_SIGMA, unbiased: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian targets for one person: keypoints [K, 2] (x, y) in input-crop pixels, visible [K] ->
    (heatmaps [K, h, w] float32, target_weight [K, 1] float32) on a ``heatmap_size`` (h, w) grid, ``stride`` input
    pixels per heatmap pixel, ``sigma`` in heatmap pixels."""
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


@dataclass(frozen=True)
class HeatmapCodec:
    """Keypoints <-> heatmaps for one model, symmetric (as mmpose's ``MSRAHeatmap``): ``encode`` makes the training
    targets, ``decode`` reads the network's output; both take keypoints in image pixels and go through the same
    crop affine (``center``/``scale``), so that decode(encode(keypoints)) gives the keypoints back within a fraction
    of a heatmap pixel.

    Shapes: N persons, K keypoints, network input (H, W) = ``input_size``, heatmaps (h, w) = ``heatmap_size``;
    keypoints [N, K, 2] (x, y) in image pixels, visible [N, K], ``center`` [N, 2] and ``scale`` [N, 2] of each
    person's crop (``box_to_center_scale``); heatmaps [N, K, h, w] float32; weights and scores [N, K, 1] float32.

        codec = HeatmapCodec.from_contract(runner.contract, post_process="dark")
        heatmaps, weights = codec.encode(keypoints, visible, center, scale)    # training targets
        keypoints, scores = codec.decode(network_heatmaps, center, scale)     # inference
    """

    input_size: Tuple[int, int]  # (H, W) of the network input, pixels
    heatmap_size: Tuple[int, int]  # (h, w) of its heatmaps; (H, W) / (h, w) is one integer stride
    sigma: float = DEFAULT_SIGMA  # Gaussian sigma of the targets, heatmap pixels
    post_process: str = "quarter"  # decoding refinement, one of POST_PROCESS (None: "none")
    unbiased: bool = True  # targets centred at the sub-pixel position (False: HRNet's rounded centre)
    blur_kernel: int = 11  # DARK's Gaussian blur, heatmap pixels (11 for 64x48 maps)

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "heatmap_size", tuple(int(v) for v in self.heatmap_size))
        object.__setattr__(self, "post_process", _post_process_name(self.post_process))
        (height, width), (hm_height, hm_width) = self.input_size, self.heatmap_size
        if min(height, width, hm_height, hm_width) <= 0 or height % hm_height or width % hm_width \
                or height // hm_height != width // hm_width:
            raise ValueError("input_size {} must be heatmap_size {} times one integer stride".format(
                self.input_size, self.heatmap_size))
        if self.sigma <= 0:
            raise ValueError("sigma must be > 0 heatmap pixels, got {}".format(self.sigma))

    @classmethod
    def from_contract(cls, contract: ModelContract, post_process: Optional[str] = "quarter",
                      sigma: float = DEFAULT_SIGMA) -> "HeatmapCodec":
        """The codec of a model: sizes from its contract (``input_size``, ``heatmap_size``)."""
        return cls(contract.input_size, contract.heatmap_size, sigma, post_process)

    @property
    def stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return self.input_size[0] // self.heatmap_size[0]

    def encode(self, keypoints: np.ndarray, visible: np.ndarray, center: np.ndarray, scale: np.ndarray,
               rotation=0.0) -> Tuple[np.ndarray, np.ndarray]:
        """Keypoints [N, K, 2] in image pixels, visible [N, K], crops ``center`` [N, 2] / ``scale`` [N, 2] rotated
        by ``rotation`` degrees (a number or [N]; training augmentation) -> (heatmaps [N, K, h, w] float32,
        weights [N, K, 1] float32: 0 for invisible keypoints and those whose Gaussian misses the map)."""
        keypoints = np.asarray(keypoints)
        if keypoints.ndim != 3 or keypoints.shape[2] < 2:
            raise ValueError("keypoints must be [N, K, 2], got shape {}".format(keypoints.shape))
        count, num_keypoints = keypoints.shape[:2]
        visible = np.asarray(visible).reshape(count, num_keypoints)
        rotations = np.broadcast_to(np.asarray(rotation, np.float64), (count,))
        heatmaps = np.zeros((count, num_keypoints) + self.heatmap_size, np.float32)
        weights = np.zeros((count, num_keypoints, 1), np.float32)
        for i in range(count):
            trans = get_affine_transform(center[i], scale[i], rotations[i], self.input_size)
            crop_xy = affine_transform(keypoints[i, :, :2], trans)  # [K, 2] input-crop pixels
            heatmaps[i], weights[i] = encode_keypoints(crop_xy, visible[i], self.heatmap_size, self.stride,
                                                       self.sigma, self.unbiased)
        return heatmaps, weights

    def decode(self, heatmaps: np.ndarray, center: np.ndarray, scale: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Heatmaps [N, K, h, w] of the crops ``center`` [N, 2] / ``scale`` [N, 2] -> (keypoints [N, K, 2] float64
        in image pixels, scores [N, K, 1] float32), refined by ``post_process``."""
        shape = np.shape(heatmaps)
        if len(shape) != 4 or tuple(shape[2:]) != self.heatmap_size:
            raise ValueError("heatmaps must be [N, K, {}, {}] (the contract's heatmap_size), got shape {}".format(
                self.heatmap_size[0], self.heatmap_size[1], shape))
        return decode_heatmaps(heatmaps, center, scale, self.post_process, self.blur_kernel)
