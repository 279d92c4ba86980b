"""``goatpose build --verify``: the engine against onnxruntime (FP32, CPU) on real person crops, within the limits of
its effective precision (``compare.engine_tolerance``)."""

from typing import Sequence

import numpy as np

from goatpose_edge.artefact.sidecar import remove_engine
from goatpose_edge.compare import HeatmapAgreement, compare_heatmaps, engine_tolerance
from goatpose_edge.errors import GoatPoseError


class EngineVerifyError(GoatPoseError):
    """An engine whose heatmaps stray beyond the tolerance of its precision."""


def verify_engine(onnx_path: str, engine_path: str, sources: Sequence = (), images: Sequence[str] = ()
                  ) -> HeatmapAgreement:
    """Run both on calibration-style crops (``sources``) and ``images``; at least one real crop is required."""
    from goatpose_edge.engines.calibration import calibration_crops
    from goatpose_edge.image_args import parity_inputs
    from goatpose_edge.runtime import load_runner
    from goatpose_edge.runtime.base import infer_chunked

    with load_runner(onnx_path, providers=["CPUExecutionProvider"]) as reference, load_runner(engine_path) as engine:
        contract = reference.contract
        batches = [x for label, x in parity_inputs(contract, None, images) if label != "random"]
        if sources:
            batches.append(calibration_crops(sources, contract, 16))
        if not batches:
            raise EngineVerifyError("--verify needs real person crops: give --calib-images/--calib-coco or --image")
        crops = np.concatenate(batches)
        a, b = infer_chunked(reference, crops), infer_chunked(engine, crops)
        precision = engine.sidecar.effective_precision
    return compare_heatmaps("verify {} engine vs onnxruntime FP32 on {} crops".format(precision, len(crops)), a, b,
                            engine_tolerance(precision),
                            ("onnxruntime FP32 " + onnx_path, precision + " engine " + engine_path),
                            stride=contract.heatmap_stride)


def check(report: HeatmapAgreement) -> None:
    """Raise ``EngineVerifyError`` with the report's line when the engine failed its check."""
    if not report.ok:
        raise EngineVerifyError(report.line())


def reject_failed(report: HeatmapAgreement, engine_path: str) -> None:
    """An engine that failed its check is not left where a runner would pick it up: remove it and its sidecar (the
    calibration cache is kept, it was not at fault) and raise ``EngineVerifyError``. Nothing happens when it passed."""
    if report.ok:
        return
    remove_engine(engine_path)
    raise EngineVerifyError("{}; {} and its sidecar were removed (the calibration cache is kept)".format(
        report.line(), engine_path))
