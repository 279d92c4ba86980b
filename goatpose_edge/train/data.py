"""COCO keypoint persons as top-down training samples, through the inference codec (same affine, same crop).

HRNet's recipe (``lib/dataset/JointsDataset.py``): persons with at least one labelled keypoint and a clean box;
half-body crops with p 0.3 (when more than 8 joints are labelled), scale x clip(N(1, 0.35), 0.65, 1.35), rotation
clip(N(0, 45), -90, 90) degrees with p 0.6, horizontal flip with p 0.5 (flip pairs swapped); Gaussian targets
(``HeatmapCodec.encode``, the codec that decodes at inference: sigma 2 on the heatmap grid) and per-joint target
weights (0 for unlabelled joints and joints that leave the crop).
"""

import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from goatpose_edge.coco import load_coco
from goatpose_edge.codec import HeatmapCodec, box_to_center_scale, clean_box, crop_person, normalize_crops
from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, read_image

UPPER_BODY = tuple(range(11))  # COCO: nose, eyes, ears, shoulders, elbows, wrists


@dataclass
class Augment:
    flip: float = 0.5
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


NO_AUGMENT = Augment(flip=0.0, scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0, half_body_prob=0.0)


def load_person_records(ann_file: str, image_dir: str) -> List[Dict[str, object]]:
    """[{image, center, scale, joints [K, 3]}] for every non-crowd person with keypoints and a clean box.

    The annotation file is checked first (``coco.read_keypoint_annotations``: JSON, COCO layout, keypoints, at
    least one person) and every image it names must be in ``image_dir``, so bad input fails here in one line, before
    a model is built or a worker process started."""
    try:
        import pycocotools  # noqa: F401
    except ImportError as exc:
        raise GoatPoseError("training reads COCO annotations with pycocotools: pip install pycocotools") from exc
    if not os.path.isfile(ann_file):
        raise GoatPoseError("annotation file not found: {}".format(ann_file))
    if not os.path.isdir(image_dir):
        raise GoatPoseError("training images folder {} not found (pass --train-images DIR)".format(image_dir))
    coco = load_coco(ann_file)
    records = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs([image_id])[0]
        width, height = info["width"], info["height"]
        path = os.path.join(image_dir, info["file_name"])
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
            if ann.get("num_keypoints", 0) == 0 or max(ann["keypoints"]) == 0:
                continue
            box = clean_box(ann["bbox"], (height, width))
            if ann.get("area", 0) <= 0 or box is None:
                continue
            records.append({"image": path, "image_id": image_id, "box": box,
                            "joints": np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)})
    if not records:
        raise GoatPoseError("{} has no person with labelled keypoints and a box inside its image".format(ann_file))
    images = sorted({record["image"] for record in records})
    missing = [path for path in images if not os.path.isfile(path)]
    if missing:
        raise GoatPoseError("{} of the {} training images that {} names are not in {} (first: {}); pass the folder "
                            "that holds them with --train-images DIR".format(
                                len(missing), len(images), ann_file, image_dir, os.path.basename(missing[0])))
    return records


def half_body(joints: np.ndarray, aspect_ratio: float, rng: np.random.Generator):
    """(center, scale) around the upper or the lower body's labelled joints (HRNet's half_body_transform)."""
    visible = joints[:, 2] > 0
    upper = [j for j in range(len(joints)) if visible[j] and j in UPPER_BODY]
    lower = [j for j in range(len(joints)) if visible[j] and j not in UPPER_BODY]
    chosen = upper if (rng.random() < 0.5 and len(upper) > 2) else lower
    if len(chosen) < 2:
        chosen = upper
    if len(chosen) < 2:
        return None
    points = joints[chosen, :2]
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    center, scale = box_to_center_scale([x0, y0, x1 - x0, y1 - y0], aspect_ratio)
    return center, scale * 1.5 / 1.25  # HRNet: 1.5 around half bodies (box_to_center_scale already pads 1.25)


def make_sample(image_bgr: np.ndarray, box, joints: np.ndarray, contract: ModelContract, augment: Augment,
                rng: np.random.Generator, codec: Optional[HeatmapCodec] = None):
    """One training sample of a person (box (x, y, w, h), joints [K, 3] (x, y, v), image pixels) in a BGR image:
    (input [3, H, W] float32, target [K, h, w] float32, target_weight [K, 1] float32), targets by ``codec``
    (default ``HeatmapCodec.from_contract(contract)``)."""
    codec = codec or HeatmapCodec.from_contract(contract)
    joints = joints.copy()
    center, scale = box_to_center_scale(box, contract.aspect_ratio)
    if augment.half_body_prob and (joints[:, 2] > 0).sum() > augment.half_body_min_joints \
            and rng.random() < augment.half_body_prob:
        found = half_body(joints, contract.aspect_ratio, rng)
        if found is not None:
            center, scale = found
    scale = scale * float(np.clip(rng.standard_normal() * augment.scale_factor + 1, 1 - augment.scale_factor,
                                  1 + augment.scale_factor))
    rotation = 0.0
    if augment.rotation_prob and rng.random() < augment.rotation_prob:
        rotation = float(np.clip(rng.standard_normal() * augment.rotation_factor, -2 * augment.rotation_factor,
                                 2 * augment.rotation_factor))
    if augment.flip and rng.random() < augment.flip:
        image_bgr = image_bgr[:, ::-1]
        width = image_bgr.shape[1]
        joints[:, 0] = width - joints[:, 0] - 1
        for a, b in contract.flip_pairs:
            joints[[a, b]] = joints[[b, a]]
        center = center.copy()
        center[0] = width - center[0] - 1
    crop = crop_person(np.ascontiguousarray(image_bgr), center, scale, contract, rotation)
    targets, weights = codec.encode(joints[None, :, :2], joints[None, :, 2] > 0, center[None], scale[None], rotation)
    return normalize_crops(crop[None], contract)[0], targets[0], weights[0]


class CocoKeypoints:
    """A torch-style dataset (``len``, ``[i]``) of person samples; ``augment`` None for validation-style crops."""

    def __init__(self, ann_file: str, image_dir: str, contract: ModelContract, augment: Optional[Augment] = None,
                 seed: int = 0):
        self.records = load_person_records(ann_file, image_dir)
        self.contract = contract
        self.codec = HeatmapCodec.from_contract(contract)
        self.augment = augment or NO_AUGMENT
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Augmentation draws depend on (seed, epoch, index): reproducible, different every epoch, any worker."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        record = self.records[index]
        try:
            image = read_image(record["image"])  # as the eval and the device read them: no EXIF rotation
        except ImageError as exc:
            raise GoatPoseError("training image: {}".format(exc)) from exc
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return make_sample(image, record["box"], record["joints"], self.contract, self.augment, rng, self.codec)
