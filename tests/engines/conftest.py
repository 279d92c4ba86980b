"""A stand-in pose ONNX for engine tests: GoatPose-BL's I/O and contract around a few seeded convs."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from goatpose_edge.contract import METADATA_KEY
from goatpose_edge.variants import VARIANTS


def stand_in_pose_onnx(path: str, convs) -> str:
    """Write a chain of convs [(weight [O, I, k, k], attributes)] (a Relu between them) from input
    [batch, 3, 256, 192] to heatmaps [batch, 17, 64, 48], with GoatPose-BL's contract in its metadata."""
    nodes, weights, current = [], [], "input"
    for index, (weight, attributes) in enumerate(convs):
        name, out = "w{}".format(index), "heatmaps" if index == len(convs) - 1 else "c{}".format(index)
        weights.append(numpy_helper.from_array(np.asarray(weight, np.float32), name))
        nodes.append(helper.make_node("Conv", [current, name], [out], **attributes))
        current = out
        if out != "heatmaps":
            nodes.append(helper.make_node("Relu", [out], [out + "_relu"]))
            current = out + "_relu"
    graph = helper.make_graph(nodes, "stand-in", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  ["batch", 3, 256, 192])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["batch", 17, 64, 48])],
                              weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    helper.set_model_props(model, {METADATA_KEY: VARIANTS["goatpose-bl"].contract.to_json()})
    onnx.save(model, path)
    return path
