"""``goatpose build --verify``: the engine against onnxruntime (FP32, CPU) on the same real inputs, within the limits
of its effective precision: a pose engine's heatmaps on person crops (``compare.engine_tolerance``), a detector
engine's persons on whole images (``DETECTOR_LIMITS``)."""

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

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


#: A detector engine against onnxruntime FP32, by effective precision: (the least IoU at which each side's confident
#: persons must be found by the other, the largest score difference of those pairs). Confident: a score at least
#: ``CONFIDENT_MARGIN`` above the detector's threshold, so a person scored at the threshold by one side and just under
#: it by the other is no failure. FP16 moves a 640-pixel box by a fraction of a pixel and a score by ~1e-3.
DETECTOR_LIMITS = {"fp32": (0.95, 0.02), "fp16": (0.9, 0.05)}
CONFIDENT_MARGIN = 0.1


@dataclass
class DetectionAgreement:
    """How a detector engine's persons agree with onnxruntime's on the same images, and whether that passes."""

    label: str  # "verify fp16 detector engine vs onnxruntime FP32 on 3 images"
    confident: int  # confident persons of both sides
    missed: int  # of those, not found by the other side at ``limits[0]`` IoU
    worst_iou: Optional[float]  # the least IoU of a found confident person (None when none was found)
    max_score_diff: float  # over the found pairs (0.0 when none)
    limits: Tuple[float, float]  # DETECTOR_LIMITS[precision]

    @property
    def ok(self) -> bool:
        """Persons to compare (images without any would pass an engine that finds nobody), each found by the other
        side, with scores that agree."""
        return self.confident > 0 and self.missed == 0 and self.max_score_diff <= self.limits[1]

    def line(self) -> str:
        worst = "-" if self.worst_iou is None else "{:.3f}".format(self.worst_iou)
        if not self.confident:
            return ("{}: neither side found a person scored {} or more: nothing to compare, give --image photos "
                    "with persons  FAIL".format(self.label, "the detector's threshold + {}".format(CONFIDENT_MARGIN)))
        return ("{}: {} confident persons, {} not found by the other side (IoU >= {}), worst IoU {}, score "
                "difference {:.3f} (limit {})  {}".format(self.label, self.confident, self.missed, self.limits[0],
                                                          worst, self.max_score_diff, self.limits[1],
                                                          "ok" if self.ok else "FAIL"))


def compare_detections(label: str, reference: Sequence, test: Sequence, precision: str, threshold: float
                       ) -> DetectionAgreement:
    """Per image, each side's ``Detections`` against the other's: every confident person of one side (score >=
    ``threshold + CONFIDENT_MARGIN``) must be found by the other with IoU >= the precision's limit."""
    from goatpose_edge.detection.base import iou_matrix

    limits = DETECTOR_LIMITS[precision]
    confident = missed = 0
    worst, score_diff = None, 0.0  # type: Optional[float], float
    for ours, theirs in zip(reference, test):
        for a, b in ((ours, theirs), (theirs, ours)):
            sure = a.scores >= threshold + CONFIDENT_MARGIN
            confident += int(sure.sum())
            if not sure.any():
                continue
            if not len(b):
                missed += int(sure.sum())
                continue
            iou = iou_matrix(a.boxes[sure], b.boxes)
            best = iou.argmax(axis=1)
            found = iou[np.arange(len(best)), best] >= limits[0]
            missed += int((~found).sum())
            if found.any():
                least = float(iou[np.arange(len(best)), best][found].min())
                worst = least if worst is None else min(worst, least)
                diff = np.abs(a.scores[sure][found] - b.scores[best[found]])
                score_diff = max(score_diff, float(diff.max()))
    return DetectionAgreement(label, confident, missed, worst, score_diff, limits)


def verify_detector(onnx_path: str, engine_path: str, images: Sequence[str]) -> DetectionAgreement:
    """A detector engine against its ONNX on onnxruntime (CPU) on whole images (a ``--image`` box is ignored: a
    detector reads the frame)."""
    from goatpose_edge.detection.yolo import YoloDetector
    from goatpose_edge.image_args import read_image_arg

    if not images:
        raise EngineVerifyError("--verify of a detector engine needs images with persons: give --image IMG (or "
                                "--calib-images DIR)")
    frames = [read_image_arg(text)[1] for text in images]
    reference = YoloDetector(onnx_path, providers=["CPUExecutionProvider"])
    try:
        engine = YoloDetector(engine_path, layout=reference.layout)
        try:
            precision = engine.runner.precision
            found = [(reference.detect(frame), engine.detect(frame)) for frame in frames]
        finally:
            engine.close()
    finally:
        reference.close()
    return compare_detections("verify {} detector engine vs onnxruntime FP32 on {} image{}".format(
        precision, len(frames), "" if len(frames) == 1 else "s"), [r for r, _ in found], [t for _, t in found],
        precision, reference.score_threshold)


def check(report: HeatmapAgreement) -> None:
    """Raise ``EngineVerifyError`` with the report's line when the engine failed its check."""
    if not report.ok:
        raise EngineVerifyError(report.line())


def reject_failed(report, engine_path: str, calibration_cache: Optional[str] = None,
                  precision_graph: Optional[str] = None) -> None:
    """An engine that failed its check (a ``HeatmapAgreement`` or ``DetectionAgreement``) is not left where a runner would pick it up: remove it and its sidecar and
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
