"""``goatpose build --verify``: the engine against onnxruntime (FP32, CPU) on real person crops."""

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from goatpose_edge.engines.policy import VERIFY_TOLERANCE
from goatpose_edge.errors import GoatPoseError


class EngineVerifyError(GoatPoseError):
    """An engine whose heatmaps stray beyond the tolerance of its precision."""


@dataclass
class EngineVerifyReport:
    precision: str
    crops: int
    heatmap_max_abs: float
    heatmap_ref_max: float
    keypoint_mean_px: float
    keypoint_max_px: float
    nonfinite: str = ""  # ``nonfinite_outputs`` of onnxruntime and the engine: '' when both are finite

    @property
    def tolerance(self):
        return VERIFY_TOLERANCE[self.precision]

    @property
    def ok(self) -> bool:
        if self.nonfinite:
            return False
        rel, px = self.tolerance
        return self.heatmap_max_abs <= rel * self.heatmap_ref_max and self.keypoint_mean_px <= px

    def line(self) -> str:
        if self.nonfinite:
            return "verify {} engine vs onnxruntime FP32 on {} crops: {}: FAIL".format(
                self.precision, self.crops, self.nonfinite)
        return ("verify {} engine vs onnxruntime FP32 on {} crops: heatmap max abs {:.3e} ({:.2%} of max), keypoint "
                "error mean {:.2f} px, max {:.2f} px; tolerance {:.0%} and {} px mean: {}".format(
                    self.precision, self.crops, self.heatmap_max_abs,
                    self.heatmap_max_abs / max(self.heatmap_ref_max, 1e-30), self.keypoint_mean_px,
                    self.keypoint_max_px, self.tolerance[0], self.tolerance[1], "ok" if self.ok else "FAIL"))

    def check(self) -> None:
        if not self.ok:
            raise EngineVerifyError(self.line())


def verify_engine(onnx_path: str, engine_path: str, sources: Sequence = (), images: Sequence[str] = ()
                  ) -> EngineVerifyReport:
    """Run both on calibration-style crops (``sources``) and ``images``; at least one real crop is required."""
    from goatpose_edge.codec import get_max_preds
    from goatpose_edge.engines.calibration import calibration_crops
    from goatpose_edge.export.parity import nonfinite_outputs, parity_inputs
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
    nonfinite = nonfinite_outputs([("onnxruntime FP32 " + onnx_path, a), (precision + " engine " + engine_path, b)])
    if nonfinite:
        return EngineVerifyReport(precision, len(crops), float("nan"), float("nan"), float("nan"), float("nan"),
                                  nonfinite)
    displacement = np.linalg.norm(get_max_preds(a)[0] - get_max_preds(b)[0], axis=-1) * contract.heatmap_stride
    return EngineVerifyReport(precision, len(crops), float(np.abs(a - b).max()), float(np.abs(a).max()),
                              float(displacement.mean()), float(displacement.max()))
