"""Numerical parity between two artefacts (or an artefact and PyTorch) on seeded random and real person crops."""

import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from goatpose_edge.codec.crop import crops_from_boxes
from goatpose_edge.codec.flip import merge_flip
from goatpose_edge.contract import ModelContract
from goatpose_edge.errors import GoatPoseError

FP32_TOLERANCE = 1e-4  # max abs error / max |reference|
FLIP_TOLERANCE = 1e-5  # in-graph flip merge vs the codec's numpy merge


class ParityError(GoatPoseError):
    """Two artefacts that should compute the same heatmaps do not."""


@dataclass
class ParityReport:
    label: str  # which input: "random" or "crop:<file>"
    max_abs: float  # max |test - reference|
    ref_max: float  # max |reference|
    tolerance: float  # allowed max_abs / ref_max

    @property
    def max_rel(self) -> float:
        return self.max_abs / self.ref_max if self.ref_max > 0 else float(self.max_abs > 0)

    @property
    def ok(self) -> bool:
        return self.max_rel <= self.tolerance

    def line(self) -> str:
        return "{:<28} max abs {:.3e}  max rel {:.3e} (of max|ref| {:.3e})  tolerance {:.0e}  {}".format(
            self.label, self.max_abs, self.max_rel, self.ref_max, self.tolerance, "ok" if self.ok else "FAIL")


def parse_image_arg(text: str) -> Tuple[str, Optional[Tuple[float, float, float, float]]]:
    """'photo.jpg' or 'photo.jpg@x,y,w,h' -> (path, box or None for the whole image)."""
    path, _, box = text.partition("@")
    if not box:
        return path, None
    try:
        values = tuple(float(v) for v in box.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise GoatPoseError("bad person box {!r} in {!r}: expected IMAGE@x,y,w,h with w, h > 0".format(box, text))
    return path, values


def parity_inputs(contract: ModelContract, batch: Optional[int],
                  images: Sequence[str] = ()) -> List[Tuple[str, np.ndarray]]:
    """Labelled network inputs: a seeded random batch, then one crop batch per image (``parse_image_arg`` syntax).

    ``batch`` is the artefact's static batch, or None for a dynamic batch (random batch 2, crops as they come).
    """
    height, width = contract.input_size
    size = batch or 2
    inputs = [("random", np.random.RandomState(0).standard_normal((size, 3, height, width)).astype(np.float32))]
    for text in images:
        path, box = parse_image_arg(text)
        image = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
        if image is None:
            raise GoatPoseError("cannot read image {}: missing or not an image OpenCV can decode".format(path))
        box = box or (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
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


def compare(label: str, reference: np.ndarray, test: np.ndarray, tolerance: float) -> ParityReport:
    if reference.shape != test.shape:
        raise ParityError("{}: output shapes differ, {} vs {}".format(label, list(reference.shape), list(test.shape)))
    reference = reference.astype(np.float64)
    return ParityReport(label, float(np.abs(test - reference).max()), float(np.abs(reference).max()), tolerance)


def check(reports: Sequence[ParityReport], what: str) -> None:
    failed = [r for r in reports if not r.ok]
    if failed:
        raise ParityError("{}: parity failed on {}: max rel error {:.3e} > tolerance {:.0e}".format(
            what, failed[0].label, failed[0].max_rel, failed[0].tolerance))


def verify_runners(reference, test, images: Sequence[str] = (), tolerance: float = FP32_TOLERANCE,
                   ) -> List[ParityReport]:
    """Compare two active runners on the same inputs. When only ``test`` merges the flip test in its graph, the
    reference side is merged in numpy (``flip_merged_reference``) and the tolerance tightens to ``FLIP_TOLERANCE``."""
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
    reports = []
    for label, x in parity_inputs(b, batch, images):
        if b.flip_merged and not a.flip_merged:
            expected = flip_merged_reference(reference.infer, x, a)
            reports.append(compare(label, expected, test.infer(x), min(tolerance, FLIP_TOLERANCE)))
        else:
            reports.append(compare(label, reference.infer(x), test.infer(x), tolerance))
    return reports
