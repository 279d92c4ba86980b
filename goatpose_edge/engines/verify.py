"""``goatpose build --verify``: the engine against onnxruntime (FP32, CPU) on real person crops, within the limits of
its effective precision (``compare.engine_tolerance``)."""

import os
from typing import Optional, Sequence

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


def reject_failed(report: HeatmapAgreement, engine_path: str, calibration_cache: Optional[str] = None,
                  precision_graph: Optional[str] = None) -> None:
    """An engine that failed its check is not left where a runner would pick it up: remove it and its sidecar and
    raise ``EngineVerifyError``, naming what the build wrote and keeps: its calibration cache (INT8: not at fault, a
    rebuild reuses it) and its precision graph (TensorRT >= 11), each only when the build has one. Nothing happens
    when it passed."""
    if report.ok:
        return
    remove_engine(engine_path)
    kept = ""
    if calibration_cache and os.path.isfile(calibration_cache):
        kept += "; its calibration cache {} is kept (a rebuild reuses it)".format(calibration_cache)
    if precision_graph and os.path.isfile(precision_graph):
        kept += "; its precision graph {} is kept".format(precision_graph)
    raise EngineVerifyError("{}; {} and its sidecar were removed{}".format(report.line(), engine_path, kept))
