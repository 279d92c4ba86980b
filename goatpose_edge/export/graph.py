"""Graph clean-up after the exporter, and the census that proves it.

onnx-simplifier folds constants (BatchNorm into the convs that precede it, the deploy-form NAM vectors) and removes
Identity/no-op nodes; two exact rewrites of our own follow: no-op Slices (output shape == input shape) and a Relu fed
by a Relu (ReLU is idempotent). ``census`` counts what must not be left.
"""

import collections
from typing import Dict

from goatpose_edge.errors import DependencyError, GoatPoseError


def simplify(model):
    """onnx-simplifier with its own numeric self-check; returns the simplified ``ModelProto``."""
    try:
        import onnxsim
    except ImportError as exc:
        raise DependencyError("graph clean-up needs onnx-simplifier: pip install onnxsim") from exc
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise GoatPoseError("onnx-simplifier could not validate the simplified graph")
    return simplified


def _producers(model) -> Dict[str, object]:
    return {out: node for node in model.graph.node for out in node.output}


def _shape(value_info) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)


def _bypass(model, node, replacement: str) -> bool:
    """Feed ``node``'s consumers from ``replacement`` and drop ``node``; refused when its output is a graph output."""
    output = node.output[0]
    if any(o.name == output for o in model.graph.output):
        return False
    for other in model.graph.node:
        for i, name in enumerate(other.input):
            if name == output:
                other.input[i] = replacement
    model.graph.node.remove(node)
    return True


def noop_slices(model):
    """Slice nodes whose output has the input's shape (needs inferred shapes)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: _shape(vi) for vi in list(inferred.graph.value_info) + list(inferred.graph.input)
              + list(inferred.graph.output)}
    return [n for n in model.graph.node if n.op_type == "Slice" and n.input[0] in shapes and n.output[0] in shapes
            and shapes[n.input[0]] == shapes[n.output[0]] and all(shapes[n.input[0]])]


def duplicate_relus(model):
    """Relu nodes whose input comes straight from another Relu."""
    producers = _producers(model)
    return [n for n in model.graph.node
            if n.op_type == "Relu" and getattr(producers.get(n.input[0]), "op_type", None) == "Relu"]


def remove_redundant_nodes(model) -> Dict[str, int]:
    """Apply both exact rewrites in place until none applies; returns how many nodes each removed."""
    removed = {"noop_slice": 0, "duplicate_relu": 0}
    for kind, finder in (("noop_slice", noop_slices), ("duplicate_relu", duplicate_relus)):
        while True:
            done = sum(_bypass(model, node, node.input[0]) for node in finder(model))
            removed[kind] += done
            if not done:
                break
    return removed


def census(model) -> Dict[str, int]:
    """Op-type counts plus the things a clean deploy graph must not contain (all expected 0)."""
    producers = _producers(model)
    counts = collections.Counter(n.op_type for n in model.graph.node)
    report = {"nodes": len(model.graph.node)}
    report.update({"op:" + op: n for op, n in sorted(counts.items())})
    report["bn_after_conv"] = sum(  # BatchNorm that onnxsim could have folded into its conv
        1 for n in model.graph.node
        if n.op_type == "BatchNormalization" and getattr(producers.get(n.input[0]), "op_type", None) == "Conv")
    report["nam_weight_ops"] = sum(counts[op] for op in ("Abs", "ReduceSum", "ReduceL1"))
    report["training_ops"] = counts["Dropout"]
    report["identity"] = counts["Identity"]
    report["noop_slice"] = len(noop_slices(model))
    report["duplicate_relu"] = len(duplicate_relus(model))
    return report


DIRT = ("bn_after_conv", "nam_weight_ops", "training_ops", "identity", "noop_slice", "duplicate_relu")
