"""Box <-> center/scale and the crop affine, with HRNet's conventions (``lib/utils/transforms.py``,
``_xywh2cs`` in ``lib/dataset/coco.py``).

Glossary: a box is (x, y, w, h) in image pixels; ``center`` [2] is its centre (x, y) in image pixels; ``scale`` [2]
is the padded box size (w, h) in units of ``PIXEL_STD`` px (HRNet's ``pixel_std``). Points, boxes, ``center`` and
``scale`` are x first, as image coordinates; grid sizes (``output_size``, the contract's ``input_size`` and
``heatmap_size``) are (H, W), as array shapes, at every public function of the codec (HRNet passes (W, H)).
"""

from typing import Sequence, Tuple

import cv2
import numpy as np

PIXEL_STD = 200.0  # HRNet's unit of scale, pixels


def box_to_center_scale(box: Sequence[float], aspect_ratio: float,
                        padding: float = 1.25) -> Tuple[np.ndarray, np.ndarray]:
    """Person box (x, y, w, h) in image pixels -> (center [2] (x, y) in image pixels, scale [2] (w, h) in
    ``PIXEL_STD``-px units), float32, as HRNet's ``_xywh2cs``.

    The box is grown to ``aspect_ratio`` (= input W / H) around its centre, then padded by ``padding``.
    """
    x, y, w, h = (float(v) for v in box)
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32)
    return center, scale * padding


def _rotate(point: Sequence[float], rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs])


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point that makes (a, b, c) a right angle at b: fixes the affine from two points."""
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def get_affine_transform(center: Sequence[float], scale: Sequence[float], rot: float,
                         output_size: Sequence[int], inv: bool = False) -> np.ndarray:
    """2x3 affine [2, 3] mapping image pixels to the pixels of an ``output_size`` (H, W) crop of the box
    ``center`` [2] / ``scale`` [2] rotated by ``rot`` degrees; ``inv=True`` maps crop pixels back to the image.

    Same points and float32 steps as HRNet's ``get_affine_transform`` (which takes its size as (W, H))."""
    if np.ndim(scale) == 0:
        scale = np.array([scale, scale])
    scale_px = np.asarray(scale) * PIXEL_STD  # keeps the caller's dtype (float32 from box_to_center_scale), as HRNet
    dst_h, dst_w = output_size[0], output_size[1]
    rot_rad = np.pi * rot / 180
    src_dir = _rotate([0, scale_px[0] * -0.5], rot_rad)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = np.asarray(center)
    src[1, :] = np.asarray(center) + src_dir
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2:, :] = _third_point(src[0, :], src[1, :])
    dst[2:, :] = _third_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def affine_transform(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points [..., 2]; returns [..., 2] float64."""
    points = np.asarray(points, dtype=np.float64)
    return points @ trans[:, :2].T + trans[:, 2]
