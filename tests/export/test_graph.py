"""The exact clean-up rewrites on small graphs, checked by running them with onnxruntime."""

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from goatpose_edge.export.graph import census, remove_redundant_nodes


def _run(model, x):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _graph_with_dirt():
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("starts", [0]), ("ends", [4]), ("axes", [1]), ("ends_short", [2]))]
    nodes = [
        helper.make_node("Relu", ["x"], ["r1"], name="r1"),
        helper.make_node("Relu", ["r1"], ["r2"], name="r2"),  # duplicate activation
        helper.make_node("Slice", ["r2", "starts", "ends", "axes"], ["s1"], name="noop"),  # keeps all 4 channels
        helper.make_node("Slice", ["s1", "starts", "ends_short", "axes"], ["s2"], name="real"),  # keeps 2
        helper.make_node("Relu", ["s2"], ["y"], name="r3"),  # fed by a Slice: stays
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def test_rewrites_remove_only_redundant_nodes_and_keep_the_function():
    model = _graph_with_dirt()
    x = np.random.RandomState(0).standard_normal((1, 4, 3, 3)).astype(np.float32)
    before = _run(model, x)
    assert (census(model)["noop_slice"], census(model)["duplicate_relu"]) == (1, 1)
    assert remove_redundant_nodes(model) == {"noop_slice": 1, "duplicate_relu": 1}
    onnx.checker.check_model(model)
    assert [n.name for n in model.graph.node] == ["r1", "real", "r3"]
    assert np.array_equal(_run(model, x), before)
    assert (census(model)["noop_slice"], census(model)["duplicate_relu"]) == (0, 0)


def test_a_graph_output_is_never_bypassed():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert remove_redundant_nodes(model)["duplicate_relu"] == 0 and len(model.graph.node) == 2
