"""Which precision an engine gets, decided from what the GPU does fast (pure logic, no TensorRT needed).

    fp32   always
    fp16   when the GPU has fast FP16 (TX2: yes); otherwise FP32 is built, unless --force
    int8   when the GPU has fast INT8 (Volta+ / Turing+ desktop GPUs); refused on a GPU without it (TX2) unless
           --force, because there it is slower than FP16 and costs pose accuracy. INT8 builds keep FP16 enabled
           where it is fast, so layers TensorRT leaves out of INT8 do not fall back to FP32.
"""

from dataclasses import dataclass, field
from typing import List, Tuple

from goatpose_edge.errors import GoatPoseError

PRECISIONS = ("fp32", "fp16", "int8")  # the --verify limits of each: goatpose_edge.compare.TOLERANCES


class PrecisionError(GoatPoseError):
    """A precision the platform cannot build or run well."""


@dataclass(frozen=True)
class PlatformCaps:
    """What the build machine offers (from ``tensorrt.Builder`` and the CUDA device)."""

    gpu_name: str
    compute_capability: Tuple[int, int]
    tensorrt_version: str
    fast_fp16: bool
    fast_int8: bool
    dla_cores: int = 0
    precision_flags: bool = True  # False on TensorRT >= 11: FP16/INT8 only from the ONNX (FP16 graph, Q/DQ nodes)

    def describe(self) -> str:
        return "{} (compute {}.{}, TensorRT {})".format(self.gpu_name, self.compute_capability[0],
                                                        self.compute_capability[1], self.tensorrt_version)


@dataclass(frozen=True)
class PrecisionDecision:
    requested: str
    effective: str
    flags: List[str] = field(default_factory=list)  # builder flags to set: "fp16", "int8"
    note: str = ""  # why effective differs from requested, or what --force overrode


def choose_precision(requested: str, caps: PlatformCaps, force: bool = False) -> PrecisionDecision:
    if requested not in PRECISIONS:
        raise PrecisionError("unknown precision {!r}; choose one of {}".format(requested, ", ".join(PRECISIONS)))
    if requested == "fp32":
        return PrecisionDecision("fp32", "fp32", [])
    if requested == "fp16":
        if caps.fast_fp16:
            return PrecisionDecision("fp16", "fp16", ["fp16"])
        if force:
            return PrecisionDecision("fp16", "fp16", ["fp16"], "forced: {} has no fast FP16".format(caps.gpu_name))
        return PrecisionDecision("fp16", "fp32", [], "{} has no fast FP16: built FP32 (--force builds FP16 anyway)"
                                 .format(caps.describe()))
    fp16 = ["fp16"] if caps.fast_fp16 else []
    if caps.fast_int8:
        return PrecisionDecision("int8", "int8", ["int8"] + fp16)
    if force:
        return PrecisionDecision("int8", "int8", ["int8"] + fp16,
                                 "forced: {} has no fast INT8, expect it slower than FP16".format(caps.gpu_name))
    raise PrecisionError(
        "INT8 refused: {} has no fast INT8 (nor has any Jetson TX2), so an INT8 engine would be slower than FP16 and "
        "lose pose accuracy; build --precision fp16, or pass --force to build INT8 anyway"
        .format(caps.describe()))
