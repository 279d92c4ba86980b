"""How two artefacts' heatmaps agree: the one comparison behind every gate that compares heatmaps.

    export parity   PyTorch vs onnxruntime on the written ONNX (``goatpose export``), and ``goatpose verify A B``
    engine check    a TensorRT engine vs onnxruntime FP32 on real person crops (``goatpose build --verify``)
    Q/DQ accuracy   the Q/DQ INT8 graph vs its FP32 source, both through onnxruntime (``goatpose quantize``)

Each compares the heatmaps [N, K, h, w] two artefacts computed from the same N inputs and measures

    max abs         max |test - reference| over every heatmap value
    max rel         max abs / max |reference|
    keypoints       per map, the distance between the two argmax peaks (``argmax_displacement``, heatmap pixels),
                    reported in input-crop pixels (times the contract's heatmap stride): mean and max over N x K
    non-finite      NaN or Inf on either side (``nonfinite_outputs``): fails whatever the tolerance, since
                    ``nan > tolerance`` is False and would otherwise pass

and gates them with a ``Tolerance`` of ``TOLERANCES``, the one table of limits.

Device side (the engine check runs on a Jetson): numpy and the codec, Python 3.6.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from goatpose_edge.codec import get_max_preds
from goatpose_edge.errors import GoatPoseError


class HeatmapShapeError(GoatPoseError):
    """Two heatmap batches of different shapes: there is nothing to compare."""


@dataclass(frozen=True)
class Tolerance:
    """The limits a comparison must stay within; a limit of None is not gated (the figure is only reported)."""

    max_rel: Optional[float]  # max |test - reference| / max |reference|
    mean_px: Optional[float] = None  # mean argmax displacement, input-crop pixels
    source: str = ""  # where the numbers come from

    @property
    def gated(self) -> bool:
        return self.max_rel is not None or self.mean_px is not None

    def text(self) -> str:
        """'1e-04', '3e-02 and 1.0 px mean', '1.0 px mean'; '' when nothing is gated."""
        parts = [_sci(self.max_rel)] if self.max_rel is not None else []
        if self.mean_px is not None:
            parts.append("{} px mean".format(self.mean_px))
        return " and ".join(parts)


#: The limits of every comparison, by kind; each cites where its numbers are documented. They replace three sources:
#: ``export.parity``'s FP32_TOLERANCE and FLIP_TOLERANCE, ``engines.policy.VERIFY_TOLERANCE`` and the Q/DQ report's
#: "informational" rule in ``engines.qdq``.
TOLERANCES = {
    "export": Tolerance(1e-4, None, "README, Export (parity): PyTorch and onnxruntime run one FP32 graph and differ by "
                                    "rounding only; also `goatpose verify`'s default --tolerance"),
    "flip": Tolerance(1e-5, None, "README, Export (parity): the in-graph flip merge against the codec's numpy merge"),
    "engine-fp32": Tolerance(1e-2, 0.5, "README, Engines (--verify): TensorRT FP32 may run TF32 on Ampere and later"),
    "engine-fp16": Tolerance(3e-2, 1.0, "README, Engines (--verify): FP16 layers"),
    "engine-int8": Tolerance(1.5e-1, 4.0, "README, Engines (--verify): INT8 layers, entropy-calibrated or Q/DQ"),
    "qdq": Tolerance(None, None, "README, Engines (goatpose quantize): the Q/DQ graph's cost is reported, not gated; "
                                 "only non-finite heatmaps fail"),
}


def tolerance(kind: str) -> Tolerance:
    """``TOLERANCES[kind]``, refusing an unknown kind with the known ones."""
    if kind not in TOLERANCES:
        raise ValueError("unknown comparison kind {!r}; known: {}".format(kind, ", ".join(sorted(TOLERANCES))))
    return TOLERANCES[kind]


def engine_tolerance(precision: str) -> Tolerance:
    """The limits of the engine check for an engine of effective ``precision`` ("fp32", "fp16", "int8")."""
    return tolerance("engine-" + precision)


def nonfinite_outputs(sides: Sequence[Tuple[str, np.ndarray]]) -> str:
    """The one finiteness check of every gate: '' when each named output is all finite, else one line such as
    'non-finite output (NaN/Inf) in onnxruntime (12 NaN, 0 Inf of 4096 values)'."""
    found = []
    for name, values in sides:
        values = np.asarray(values)
        if values.dtype.kind not in "fc":
            continue
        nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        if nan or inf:
            found.append("{} ({} NaN, {} Inf of {} values)".format(name, nan, inf, values.size))
    return "non-finite output (NaN/Inf) in " + " and ".join(found) if found else ""


def argmax_displacement(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Distance between the two argmax peaks (the codec's ``get_max_preds``) of each map: [N, K] in heatmap
    pixels."""
    return np.linalg.norm(get_max_preds(reference)[0] - get_max_preds(test)[0], axis=-1)


def _sci(value: float) -> str:
    """1e-04, 2.5e-04, 1.5e-01: scientific with as many digits as the value has (up to 4)."""
    mantissa, exponent = "{:.3e}".format(value).split("e")
    return "{}e{}".format(mantissa.rstrip("0").rstrip("."), exponent)


def _finite_or_none(value):
    return value if value is not None and np.isfinite(value) else None


@dataclass
class HeatmapAgreement:
    """How far ``test``'s heatmaps are from ``reference``'s on the same inputs, and whether that passes."""

    label: str  # what was compared: "random", "crop:<file>", "verify fp16 engine vs onnxruntime FP32 on 13 crops"
    count: int  # inputs compared (N)
    max_abs: float  # max |test - reference|; NaN when either side is not finite
    ref_max: float  # max |reference|
    tolerance: Tolerance
    keypoint_mean_px: Optional[float] = None  # mean argmax displacement, input-crop pixels; None: not measured
    keypoint_max_px: Optional[float] = None
    nonfinite: str = ""  # ``nonfinite_outputs`` of the two sides: '' when both are finite

    @property
    def max_rel(self) -> float:
        if self.nonfinite:
            return float("nan")
        return self.max_abs / self.ref_max if self.ref_max > 0 else float(self.max_abs > 0)

    @property
    def ok(self) -> bool:
        """Finite, and within each limit of ``tolerance`` (the keypoint limit only where keypoints were measured)."""
        if self.nonfinite:
            return False
        limit = self.tolerance
        if limit.max_rel is not None and not self.max_rel <= limit.max_rel:
            return False
        return limit.mean_px is None or self.keypoint_mean_px is None or self.keypoint_mean_px <= limit.mean_px

    def line(self) -> str:
        """'<label>: max abs ..  max rel .. (of max|ref| ..)[  keypoint error ..][  tolerance ..  ok|FAIL]'."""
        head = "{:<29}".format(self.label + ":")
        if self.nonfinite:
            return "{} {}  FAIL".format(head, self.nonfinite)
        parts = ["max abs {:.3e}".format(self.max_abs),
                 "max rel {:.3e} (of max|ref| {:.3e})".format(self.max_rel, self.ref_max)]
        if self.keypoint_mean_px is not None:
            parts.append("keypoint error mean {:.2f} px, max {:.2f} px".format(self.keypoint_mean_px,
                                                                              self.keypoint_max_px))
        if self.tolerance.gated:
            parts += ["tolerance " + self.tolerance.text(), "ok" if self.ok else "FAIL"]
        return head + " " + "  ".join(parts)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: non-finite numbers become None."""
        return {"label": self.label, "count": self.count, "max_abs": _finite_or_none(self.max_abs),
                "max_rel": _finite_or_none(self.max_rel), "ref_max": _finite_or_none(self.ref_max),
                "keypoint_mean_px": _finite_or_none(self.keypoint_mean_px),
                "keypoint_max_px": _finite_or_none(self.keypoint_max_px), "nonfinite": self.nonfinite,
                "tolerance": {"max_rel": self.tolerance.max_rel, "mean_px": self.tolerance.mean_px}, "ok": self.ok}


def compare_heatmaps(label: str, reference: np.ndarray, test: np.ndarray, limit: Tolerance,
                     names: Tuple[str, str] = ("reference", "test"), stride: Optional[int] = None
                     ) -> HeatmapAgreement:
    """``test`` [N, K, h, w] against ``reference`` of the same shape; ``names`` name the two sides in a non-finite
    report. With ``stride`` (input pixels per heatmap pixel) the keypoint displacement is measured too."""
    reference, test = np.asarray(reference), np.asarray(test)
    if reference.shape != test.shape:
        raise HeatmapShapeError("{}: output shapes differ, {} vs {}".format(label, list(reference.shape),
                                                                           list(test.shape)))
    count = len(reference) if reference.ndim else 1
    nonfinite = nonfinite_outputs(list(zip(names, (reference, test))))
    if nonfinite:
        nan = float("nan")
        keypoints = (nan, nan) if stride is not None else (None, None)
        return HeatmapAgreement(label, count, nan, nan, limit, keypoints[0], keypoints[1], nonfinite)
    wide = reference.astype(np.float64)
    keypoints = (None, None)
    if stride is not None:
        displacement = argmax_displacement(reference, test) * stride  # [N, K], input-crop pixels
        keypoints = (float(displacement.mean()), float(displacement.max()))
    return HeatmapAgreement(label, count, float(np.abs(test - wide).max()), float(np.abs(wide).max()), limit,
                            keypoints[0], keypoints[1])


__all__ = ["HeatmapAgreement", "HeatmapShapeError", "TOLERANCES", "Tolerance", "argmax_displacement",
           "compare_heatmaps", "engine_tolerance", "nonfinite_outputs", "tolerance"]
