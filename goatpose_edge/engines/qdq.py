"""INT8 by explicit quantization: a Q/DQ ONNX made with onnxruntime's static quantization from real person crops.

Unlike the entropy calibrator this runs on the CPU, so its accuracy cost is measured here (``qdq_accuracy``): the
Q/DQ graph through onnxruntime against the FP32 graph, as heatmap error and keypoint error in crop pixels.
"""

import os
import tempfile

import numpy as np

from goatpose_edge.compare import HeatmapAgreement, compare_heatmaps, tolerance
from goatpose_edge.errors import DependencyError, GoatPoseError
from goatpose_edge.fileio import atomic_output


def quantize_qdq(onnx_path: str, crops: np.ndarray, output: str, per_channel: bool = True) -> str:
    """Write a Q/DQ (QDQ format, int8 weights and activations, symmetric) ONNX calibrated on ``crops`` [M, 3, H, W]."""
    try:
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
    except ImportError as exc:
        raise DependencyError("Q/DQ quantization needs onnxruntime: pip install onnxruntime") from exc

    import onnx

    from goatpose_edge.engines.calibration import batches

    graph_input = onnx.load(onnx_path, load_external_data=False).graph.input[0]
    static = graph_input.type.tensor_type.shape.dim[0].dim_value  # 0: dynamic batch
    chunks = batches(crops, static) if static > 0 else (crops[i:i + 1] for i in range(len(crops)))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{graph_input.name: chunk} for chunk in chunks])

        def get_next(self):
            return next(self.items, None)

    source = os.path.abspath(onnx_path)
    with atomic_output(output) as tmp_path, tempfile.TemporaryDirectory(prefix="goatpose-qdq-") as scratch:
        previous = os.getcwd()
        os.chdir(scratch)  # onnxruntime <= 1.12 writes its augmented_model.onnx into the working folder
        try:
            quantize_static(source, os.path.abspath(os.path.join(previous, tmp_path)), Reader(),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
        finally:
            os.chdir(previous)
    _copy_metadata(onnx_path, output)
    return output


QDQ_METADATA_KEY = "goatpose_quantization"


def _copy_metadata(source: str, target: str) -> None:
    """Carry the model contract over and mark the graph as explicitly quantized (the builder then needs no
    calibrator)."""
    import onnx

    model = onnx.load(target)
    props = {p.key: p.value for p in onnx.load(source).metadata_props}
    props[QDQ_METADATA_KEY] = "qdq-int8-symmetric"
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    with atomic_output(target) as tmp_path:
        onnx.save(model, tmp_path)


class QdqAccuracyError(GoatPoseError):
    """A Q/DQ graph (or its FP32 source) whose heatmaps cannot be trusted."""


def qdq_accuracy(fp32_path: str, qdq_path: str, crops: np.ndarray, strict: bool = True) -> HeatmapAgreement:
    """The Q/DQ graph against the FP32 one on ``crops`` (the cost is reported, not gated: ``TOLERANCES["qdq"]``);
    with ``strict`` a report that is not ``ok`` (NaN/Inf heatmaps on either side) raises ``QdqAccuracyError``
    instead of being returned."""
    from goatpose_edge.runtime.base import infer_chunked
    from goatpose_edge.runtime.onnxruntime_runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(fp32_path, providers=["CPUExecutionProvider"]) as ref, \
            OnnxRuntimeRunner(qdq_path, providers=["CPUExecutionProvider"]) as test:
        a, b = infer_chunked(ref, crops), infer_chunked(test, crops)
        stride = ref.contract.heatmap_stride
    report = compare_heatmaps("Q/DQ INT8 vs FP32 (onnxruntime, CPU)", a, b, tolerance("qdq"),
                              ("FP32 " + fp32_path, "Q/DQ INT8 " + qdq_path), stride=stride)
    if strict and not report.ok:
        raise QdqAccuracyError("{}; the Q/DQ graph is unusable: check the FP32 model and the calibration images"
                               .format(report.line()))
    return report
