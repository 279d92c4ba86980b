"""Numerical parity between two artefacts (or an artefact and PyTorch) on seeded random and real person crops.

The comparison itself (max abs / max rel error, the non-finite check that fails NaN/Inf output whatever the
tolerance, the report) is ``goatpose_edge.compare``, shared with the engine check and the Q/DQ report; this module
runs the two sides on the inputs of ``image_args.parity_inputs``.
"""

import math
from typing import Callable, List, Sequence, Tuple, Union

import numpy as np

from goatpose_edge.codec.flip import merge_flip
from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.compare import HeatmapAgreement, HeatmapShapeError, Tolerance, compare_heatmaps
from goatpose_edge.compare import tolerance as tolerance_of
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.image_args import parity_inputs
from goatpose_edge.runtime.base import infer_chunked

FP32_TOLERANCE = tolerance_of("export").max_rel  # max abs error / max |reference|
FLIP_TOLERANCE = tolerance_of("flip").max_rel  # in-graph flip merge vs the codec's numpy merge

#: a parity report is the shared comparison report
ParityReport = HeatmapAgreement


class ParityError(GoatPoseError):
    """Two artefacts that should compute the same heatmaps do not."""


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
