"""The TensorRT lint on hand-built graphs: each rule can fail, and names the offending node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from goatpose_edge.export import trt8_ops
from goatpose_edge.export.lint import LintError, lint
from tests.export.test_export import _trt82_ops_from_shared


def _model(nodes, initializers=(), opset=13, domain_opsets=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domain_opsets]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 7
    return model


def _weights(name="w"):
    return numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), name)


def test_supported_ops_equal_the_parser_documentation():
    assert set(trt8_ops.SUPPORTED_OPS) == _trt82_ops_from_shared()
    assert len(trt8_ops.SUPPORTED_OPS) == 129 and trt8_ops.NOT_IN_TRT80 <= trt8_ops.SUPPORTED_OPS


def test_a_clean_graph_passes():
    report = lint(_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [_weights()]))
    assert report.ok and not report.warnings


@pytest.mark.parametrize("node, problem", [
    (helper.make_node("NonZero", ["x"], ["y"], name="nz"), "nz (NonZero): operator not supported"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", mode="cubic"), "up (Resize): mode 'cubic' unsupported"),
    (helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", coordinate_transformation_mode="tf_crop_and_resize"),
     "coordinate_transformation_mode 'tf_crop_and_resize' unsupported"),
    (helper.make_node("Conv", ["x", "x"], ["y"], name="dyn"), "dyn (Conv): input 1 ('x') must be an initializer"),
    (helper.make_node("MaxPool", ["x"], ["y"], name="pool1d", kernel_shape=[2]), "only 2D or 3D pooling"),
])
def test_each_rule_names_the_node(node, problem):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")
    report = lint(_model([node], [scales]))
    assert any(problem in v for v in report.violations), report.violations
    with pytest.raises(LintError, match="is not TensorRT 8-compatible: 1 problem"):
        report.raise_for_violations("m.onnx")


def test_opset_and_custom_domains():
    report = lint(_model([helper.make_node("Relu", ["x"], ["y"])], opset=14))
    assert report.violations == ["opset 14 > 13 (the newest the TensorRT 8 parser reads)"]
    custom = helper.make_node("Mish", ["x"], ["y"], name="m", domain="com.microsoft")
    report = lint(_model([custom], domain_opsets=[("com.microsoft", 1)]))
    assert any("custom domain 'com.microsoft'" in v for v in report.violations)


def test_trt80_gaps_are_warnings_and_trt10_relaxes():
    node = helper.make_node("Round", ["x"], ["y"], name="r")
    report = lint(_model([node]))
    assert report.ok and report.warnings == ["r (Round): needs TensorRT 8.2 (JetPack 4.6.1+), not 8.0"]
    unsupported = _model([helper.make_node("NonZero", ["x"], ["y"])], opset=17)
    assert not lint(unsupported, "trt8").ok and lint(unsupported, "trt10").ok


def test_ir_version_above_the_parsers_is_a_warning():
    model = _model([helper.make_node("Relu", ["x"], ["y"])])
    model.ir_version = 9
    assert lint(model).warnings == ["IR version 9 > 7: the TensorRT 8 parser warns about it"]
