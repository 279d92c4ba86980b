"""From a BGR frame and person boxes to the network's input batch, driven by the model contract."""

from typing import List, Optional, Sequence

import cv2
import numpy as np

from goatpose_edge.codec.transforms import box_to_center_scale, get_affine_transform
from goatpose_edge.artefact.contract import ModelContract


def crop_person(image_bgr: np.ndarray, center: Sequence[float], scale: Sequence[float],
                contract: ModelContract, rotation: float = 0.0) -> np.ndarray:
    """Warp one person of a BGR image [h, w, 3] to the contract's ``input_size`` (H, W): uint8 BGR [H, W, 3]
    (bilinear, black outside the image); ``center`` [2] / ``scale`` [2] as ``box_to_center_scale`` gives them,
    ``rotation`` in degrees (training augmentation; inference uses 0)."""
    height, width = contract.input_size
    trans = get_affine_transform(center, scale, rotation, contract.input_size)
    return cv2.warpAffine(image_bgr, trans, (int(width), int(height)), flags=cv2.INTER_LINEAR)  # OpenCV: dsize (W, H)


def normalize_crops(crops_bgr: np.ndarray, contract: ModelContract) -> np.ndarray:
    """uint8 BGR crops [N, H, W, 3] -> float32 network input [N, 3, H, W] in the contract's order and normalisation."""
    crops = np.asarray(crops_bgr)
    if contract.channel_order == "RGB":
        crops = crops[..., ::-1]
    mean = np.asarray(contract.mean, dtype=np.float32)
    std = np.asarray(contract.std, dtype=np.float32)
    batch = (crops.astype(np.float32) - mean) / std  # [N, H, W, 3]
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))  # [N, 3, H, W]


def crops_from_boxes(image_bgr: np.ndarray, boxes: Sequence[Sequence[float]], contract: ModelContract) -> np.ndarray:
    """Boxes [N, 4] (x, y, w, h) in pixels of a BGR image [h, w, 3] -> network input [N, 3, H, W] float32, (H, W)
    the contract's ``input_size`` (HRNet's 1.25 padding)."""
    crops = []
    for box in boxes:
        center, scale = box_to_center_scale(box, contract.aspect_ratio)
        crops.append(crop_person(image_bgr, center, scale, contract))
    height, width = contract.input_size
    stacked = np.stack(crops) if crops else np.zeros((0, height, width, 3), np.uint8)
    return normalize_crops(stacked, contract)


def clean_box(bbox: Sequence[float], image_size: Sequence[int]) -> Optional[List[float]]:
    """HRNet's ``clean_bbox``: a box (x, y, w, h) clipped to an image of ``image_size`` (H, W) pixels (inclusive
    pixel ends) -> [x, y, w, h], None when nothing is left."""
    height, width = image_size
    x, y, w, h = bbox
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(width - 1.0, x1 + max(0.0, w - 1)), min(height - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]
