"""Numerical parity between two artefacts (or an artefact and PyTorch) on seeded random and real person crops.

The comparison itself (max abs / max rel error, the non-finite check that fails NaN/Inf output whatever the
tolerance, the report) is ``goatpose_edge.compare``, shared with the engine check and the Q/DQ report; this module
makes the inputs and runs the two sides.
"""

import math
import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from goatpose_edge.codec.crop import crops_from_boxes
from goatpose_edge.codec.flip import merge_flip
from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.compare import HeatmapAgreement, HeatmapShapeError, Tolerance, compare_heatmaps
from goatpose_edge.compare import tolerance as tolerance_of
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, read_image
from goatpose_edge.runtime.base import infer_chunked

FP32_TOLERANCE = tolerance_of("export").max_rel  # max abs error / max |reference|
FLIP_TOLERANCE = tolerance_of("flip").max_rel  # in-graph flip merge vs the codec's numpy merge
MAX_BOX_TO_IMAGE = 100.0  # a person box this many times the image's larger side is a typo, not a person

#: a parity report is the shared comparison report
ParityReport = HeatmapAgreement


class ParityError(GoatPoseError):
    """Two artefacts that should compute the same heatmaps do not."""


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


def flip_merged_reference(infer: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
                          contract: ModelContract) -> np.ndarray:
    """What an in-graph flip test must output, computed with a plain artefact and the codec's numpy flip merge."""
    mirrored = np.ascontiguousarray(batch[:, :, :, ::-1])
    return merge_flip(infer(batch), infer(mirrored), contract.flip_pairs)


def compare(label: str, reference: np.ndarray, test: np.ndarray, tolerance: Union[float, Tolerance],
            names: Tuple[str, str] = ("reference", "test")) -> ParityReport:
    """``test`` against ``reference`` within ``tolerance`` (max rel error, or a ``Tolerance``); ``names`` name the
    two sides in a non-finite report."""
    if not isinstance(tolerance, Tolerance):
        tolerance = Tolerance(tolerance, None, "--tolerance")
    try:
        return compare_heatmaps(label, reference, test, tolerance, names)
    except HeatmapShapeError as exc:
        raise ParityError(str(exc)) from exc


def check(reports: Sequence[ParityReport], what: str) -> None:
    failed = [r for r in reports if not r.ok]
    if not failed:
        return
    first = failed[0]
    if first.nonfinite:
        raise ParityError("{}: parity failed on {}: {}; the model computes NaN/Inf: check its weights and input"
                          .format(what, first.label, first.nonfinite))
    raise ParityError("{}: parity failed on {}: max rel error {:.3e} > tolerance {}".format(
        what, first.label, first.max_rel, first.tolerance.text()))


def verify_runners(reference, test, images: Sequence[str] = (), tolerance: float = FP32_TOLERANCE,
                   ) -> List[ParityReport]:
    """Compare two active runners on the same inputs. When only ``test`` merges the flip test in its graph, the
    reference side is merged in numpy (``flip_merged_reference``) and the tolerance tightens to ``FLIP_TOLERANCE``."""
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise GoatPoseError("--tolerance must be a finite number >= 0, got {!r}".format(tolerance))
    a, b = reference.contract, test.contract
    if (a.name, a.input_size, a.num_keypoints) != (b.name, b.input_size, b.num_keypoints):
        raise ParityError("{} is {} at {}x{} but {} is {} at {}x{}: nothing to compare".format(
            reference.path, a.name, a.input_size[0], a.input_size[1], test.path, b.name, *b.input_size))
    if a.flip_merged and not b.flip_merged:
        return verify_runners(test, reference, images, tolerance)
    static = {r.max_batch for r in (reference, test) if r.max_batch is not None and r.max_batch == r.min_batch}
    if len(static) > 1:
        raise ParityError("{} and {} have different static batch sizes {}".format(reference.path, test.path, sorted(static)))
    batch = static.pop() if static else None
    names = (reference.path, test.path)
    reports = []
    def run_a(x):
        return infer_chunked(reference, x)

    def run_b(x):
        return infer_chunked(test, x)

    for label, x in parity_inputs(b, batch, images):
        if b.flip_merged and not a.flip_merged:
            expected = flip_merged_reference(run_a, x, a)
            reports.append(compare(label, expected, run_b(x), min(tolerance, FLIP_TOLERANCE), names))
        else:
            reports.append(compare(label, run_a(x), run_b(x), tolerance, names))
    return reports
