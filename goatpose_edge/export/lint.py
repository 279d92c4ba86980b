"""TensorRT compatibility lint of an ONNX graph, before it ever reaches a Jetson.

``--target trt8`` (default): every node is an operator the TensorRT 8.2 ONNX parser supports, with the attributes and
constant inputs it requires (``trt8_ops``), in the default domain, at opset <= 13. Operators missing from TensorRT 8.0
(JetPack 4.6.0) are warnings. ``--target trt10`` relaxes this to the default domain and opset <= 20.
"""

from dataclasses import dataclass, field
from typing import List

import numpy as np

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.export import trt8_ops

TARGETS = ("trt8", "trt10")
MAX_OPSET = {"trt8": trt8_ops.MAX_OPSET, "trt10": 20}
MAX_IR_VERSION_TRT8 = 7  # onnx 1.8, the version the TensorRT 8.0/8.2 parsers were built with


class LintError(GoatPoseError):
    """A graph the target TensorRT cannot parse."""


@dataclass
class LintReport:
    target: str
    violations: List[str] = field(default_factory=list)  # "node (Op): problem"
    warnings: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_for_violations(self, path: str) -> None:
        if self.violations:
            raise LintError("{} is not {}-compatible: {} problem(s): {}".format(
                path, "TensorRT 8" if self.target == "trt8" else "TensorRT 10", len(self.violations),
                "; ".join(self.violations[:8]) + ("; ..." if len(self.violations) > 8 else "")))


def _attribute(node, name, default):
    import onnx

    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _constant_values(model):
    """Names of initializers and Constant outputs -> numpy arrays; DequantizeLinear of a constant counts as constant
    (None: its value is not computed), the Q/DQ weight pattern TensorRT's explicit quantization takes."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute:
            attr = node.attribute[0]
            if attr.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "DequantizeLinear" and node.input[0] in values:
            values[node.output[0]] = None
    return values


def _check_trt8_node(node, constants, problems: List[str]) -> None:
    label = "{} ({})".format(node.name or node.output[0], node.op_type)
    op = node.op_type
    if op not in trt8_ops.SUPPORTED_OPS:
        problems.append("{}: operator not supported by the TensorRT 8.2 ONNX parser".format(label))
        return
    if op == "Resize":
        mode = _attribute(node, "mode", "nearest")
        coordinates = _attribute(node, "coordinate_transformation_mode", "half_pixel")
        nearest = _attribute(node, "nearest_mode", "round_prefer_floor")
        if mode not in trt8_ops.RESIZE_MODES:
            problems.append("{}: mode '{}' unsupported (nearest, linear)".format(label, mode))
        if coordinates not in trt8_ops.RESIZE_COORDINATE_MODES:
            problems.append("{}: coordinate_transformation_mode '{}' unsupported".format(label, coordinates))
        if mode == "nearest" and nearest not in trt8_ops.RESIZE_NEAREST_MODES:
            problems.append("{}: nearest_mode '{}' unsupported".format(label, nearest))
    index = trt8_ops.CONSTANT_INPUTS.get(op)
    if index is not None and len(node.input) > index and node.input[index] and node.input[index] not in constants:
        problems.append("{}: input {} ('{}') must be an initializer".format(label, index, node.input[index]))
    index = trt8_ops.ZERO_POINT_INPUTS.get(op)
    if index is not None and len(node.input) > index and node.input[index]:
        zero_point = constants.get(node.input[index])
        if zero_point is None or np.any(zero_point):
            problems.append("{}: zero point must be a constant 0".format(label))
    if op in trt8_ops.POOLING_OPS and len(_attribute(node, "kernel_shape", [])) not in (2, 3):
        problems.append("{}: only 2D or 3D pooling".format(label))
    if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
        problems.append("{}: the Indices output is unsupported".format(label))


def load_model(path: str):
    """The ``onnx.ModelProto`` at ``path`` for ``lint``, or one line saying why the file is not one: missing, empty,
    not ONNX (``onnx_meta.read_metadata``), or a graph that does not parse. Read as protobuf whatever the suffix
    (``onnx.load`` would take ``.txt``/``.json`` for text formats)."""
    import onnx
    from google.protobuf.message import DecodeError

    from goatpose_edge.artefact.onnx_meta import OnnxFileError, read_metadata

    read_metadata(path)  # the cheap checks, in one line
    try:
        try:
            return onnx.load(path, format="protobuf")
        except TypeError:  # onnx < 1.13: no format argument, always protobuf
            return onnx.load(path)
    except (DecodeError, ValueError, UnicodeDecodeError) as exc:
        raise OnnxFileError("{} is not an ONNX model (it does not parse: {}); re-export it with `goatpose "
                            "export`".format(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) \
            from exc


def _structure_problems(model) -> List[str]:
    """What an empty or non-model ModelProto lacks (an empty file parses as one): a graph with nothing in it is no
    network TensorRT could build, whatever its operators."""
    problems = []
    if not model.ir_version:
        problems.append("no IR version: not an ONNX model (re-export it with `goatpose export`)")
    if not model.opset_import:
        problems.append("no opset_import: not an ONNX model (re-export it with `goatpose export`)")
    graph = model.graph
    if not graph.node:
        problems.append("the graph has no nodes")
    initializers = {t.name for t in graph.initializer}
    if not [i for i in graph.input if i.name not in initializers]:
        problems.append("the graph has no inputs")
    if not graph.output:
        problems.append("the graph has no outputs")
    return problems


def lint(model, target: str = "trt8") -> LintReport:
    """Check an ``onnx.ModelProto`` against ``target`` ("trt8" or "trt10")."""
    if target not in TARGETS:
        raise GoatPoseError("unknown target {!r}; choose one of {}".format(target, ", ".join(TARGETS)))
    report = LintReport(target)
    report.violations.extend(_structure_problems(model))
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            report.violations.append("opset domain '{}' is not the standard ONNX domain".format(opset.domain))
        elif opset.version > MAX_OPSET[target]:
            report.violations.append("opset {} > {} (the newest the {} parser reads)".format(
                opset.version, MAX_OPSET[target], "TensorRT 8" if target == "trt8" else "TensorRT 10"))
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            report.violations.append("{} ({}): custom domain '{}'".format(node.name, node.op_type, node.domain))
    if target == "trt8":
        if model.ir_version > MAX_IR_VERSION_TRT8:
            report.warnings.append("IR version {} > {}: the TensorRT 8 parser warns about it".format(
                model.ir_version, MAX_IR_VERSION_TRT8))
        constants = _constant_values(model)
        for node in model.graph.node:
            if node.domain in ("", "ai.onnx"):
                _check_trt8_node(node, constants, report.violations)
                if node.op_type in trt8_ops.NOT_IN_TRT80:
                    report.warnings.append("{} ({}): needs TensorRT 8.2 (JetPack 4.6.1+), not 8.0".format(
                        node.name, node.op_type))
    return report
