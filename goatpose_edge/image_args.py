"""Person crops named on the command line: ``--image IMG[@x,y,w,h]`` parsed, read and checked, and the labelled
network inputs two artefacts are compared on (``export`` parity, ``goatpose verify``, ``build --verify``).

Device side: numpy, OpenCV and the codec's crop.
"""

import math
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.codec.crop import crops_from_boxes
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, read_image

MAX_BOX_TO_IMAGE = 100.0  # a person box this many times the image's larger side is a typo, not a person


def _bad_box(box: str, text: str, why: str) -> GoatPoseError:
    return GoatPoseError("bad person box {!r} in --image {!r}: {}; expected IMAGE@x,y,w,h (pixels, w and h >= 1)"
                         .format(box, text, why))


def parse_image_arg(text: str) -> Tuple[str, Optional[Tuple[float, float, float, float]]]:
    """'photo.jpg' or 'photo.jpg@x,y,w,h' -> (path, box or None for the whole image).

    The box is split off at the last '@', unless the whole text names an existing file ('photo@2x.png')."""
    if "@" not in text or os.path.isfile(text):
        return text, None
    path, _, box = text.rpartition("@")
    if not path:
        raise GoatPoseError("bad --image {!r}: no image path before '@'; expected IMAGE or IMAGE@x,y,w,h".format(text))
    parts = box.split(",")
    if len(parts) != 4:
        raise _bad_box(box, text, "{} number(s) instead of 4".format(len(parts) if box.strip() else 0))
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        raise _bad_box(box, text, "not numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise _bad_box(box, text, "NaN or infinite number")
    if values[2] < 1 or values[3] < 1:
        raise _bad_box(box, text, "width and height must be at least 1 pixel, got {:g} x {:g}".format(*values[2:]))
    return path, values


def read_image_arg(text: str) -> Tuple[str, np.ndarray, Tuple[float, float, float, float]]:
    """An ``--image`` argument -> (path, BGR image, box), the box checked against the image (whole image if none)."""
    path, box = parse_image_arg(text)
    if not os.path.isfile(path):
        raise GoatPoseError("cannot read image {}: no such file (--image {!r})".format(path, text))
    try:
        image = read_image(path)  # refuses empty, undecodable and truncated files
    except ImageError as exc:
        raise GoatPoseError("{} (--image {!r})".format(exc, text)) from exc
    if image.size == 0:
        raise GoatPoseError("cannot read image {}: it has no pixels (--image {!r})".format(path, text))
    height, width = image.shape[:2]
    if box is None:
        return path, image, (0.0, 0.0, float(width), float(height))
    x, y, w, h = box
    if not (x < width and y < height and x + w > 0 and y + h > 0):
        raise _bad_box(text.rpartition("@")[2], text, "the box lies wholly outside the {}x{} image".format(
            width, height))
    if max(w, h) > MAX_BOX_TO_IMAGE * max(width, height):
        raise _bad_box(text.rpartition("@")[2], text, "the box is over {:g} times the {}x{} image".format(
            MAX_BOX_TO_IMAGE, width, height))
    return path, image, box


def parity_inputs(contract: ModelContract, batch: Optional[int],
                  images: Sequence[str] = ()) -> List[Tuple[str, np.ndarray]]:
    """Labelled network inputs: a seeded random batch, then one crop batch per image (``parse_image_arg`` syntax).

    ``batch`` is the artefact's static batch, or None for a dynamic batch (random batch 2, crops as they come).
    """
    height, width = contract.input_size
    size = batch or 2
    inputs = [("random", np.random.RandomState(0).standard_normal((size, 3, height, width)).astype(np.float32))]
    for text in images:
        path, image, box = read_image_arg(text)
        crops = crops_from_boxes(image, [box], contract)  # [1, 3, H, W]
        if batch:
            crops = np.repeat(crops, batch, axis=0)
        inputs.append(("crop:" + os.path.basename(path), crops))
    return inputs
