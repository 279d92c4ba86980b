"""INT8 calibration data: real person crops through the project's own preprocessing (numpy + OpenCV).

Sources: a folder of person images (each image is one person, whole image as the box), or COCO keypoint annotations
with their images (every non-crowd person box with at least one labelled keypoint). Crops come out exactly as the
runtime pipeline makes them (``codec.crops_from_boxes``), so INT8 ranges are measured on the inputs the engine sees.
"""

import json
import math
import os
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from goatpose_edge.codec import crops_from_boxes
from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class CalibrationError(GoatPoseError):
    """No usable calibration images."""


def person_boxes_from_folder(folder: str) -> List[Tuple[str, Optional[Sequence[float]]]]:
    if os.path.isfile(folder):
        raise CalibrationError("--calib-images {} is a file: give the folder of person images".format(folder))
    if not os.path.isdir(folder):
        raise CalibrationError("calibration folder not found: {}".format(folder))
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise CalibrationError("calibration folder {} holds no images ({}): put person images there, one person "
                               "each".format(folder, ", ".join(IMAGE_SUFFIXES)))
    return [(os.path.join(folder, f), None) for f in files]


def person_boxes_from_coco(annotations: str, image_dir: str) -> List[Tuple[str, Optional[Sequence[float]]]]:
    try:
        with open(annotations) as f:
            data = json.load(f)
        files = {image["id"]: os.path.join(image_dir, image["file_name"]) for image in data["images"]}
        persons = []
        for a in data["annotations"]:
            box = a["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(
                    isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
                raise ValueError("annotation {} has bbox {!r}, not 4 finite numbers [x, y, w, h]".format(
                    a.get("id"), box))
            if not a.get("iscrowd") and a.get("num_keypoints", 1) > 0 and box[2] > 1 and box[3] > 1:
                persons.append((files[a["image_id"]], box))
    except (OSError, IOError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CalibrationError("cannot read COCO annotations {}: {}".format(annotations, exc)) from exc
    if not persons:
        raise CalibrationError("{} has no person with labelled keypoints to calibrate on".format(annotations))
    return persons


def calibration_crops(sources: Sequence[Tuple[str, Optional[Sequence[float]]]], contract: ModelContract,
                      count: int) -> np.ndarray:
    """Up to ``count`` network inputs [M, 3, H, W] float32 from (image, box or None) pairs. An image that cannot be
    read (missing, undecodable, truncated) stops with one line naming it: INT8 ranges from a grey half-image are
    wrong for every later inference."""
    crops = []
    for path, box in sources:
        if len(crops) >= count:
            break
        try:
            image = read_image(path)
        except ImageError as exc:
            raise CalibrationError("calibration image: {} (remove it or fix it)".format(exc)) from exc
        box = box if box is not None else (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
        crops.append(crops_from_boxes(image, [box], contract)[0])
    if not crops:
        raise CalibrationError("no readable calibration images among {} candidates".format(len(sources)))
    return np.stack(crops)


def batches(crops: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Full batches [batch_size, 3, H, W]; the last one is completed by wrapping around to the first crops."""
    for start in range(0, len(crops), batch_size):
        chunk = np.take(crops, np.arange(start, start + batch_size), axis=0, mode="wrap")
        yield np.ascontiguousarray(chunk, dtype=np.float32)
