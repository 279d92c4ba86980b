"""``goatpose export``: a TensorRT-ready ONNX file, checked against PyTorch (``export.export_onnx``)."""

import sys

from goatpose_edge.cli.common import CHECKPOINT, ONNX_SUFFIXES, add_trust_argument, image_inputs, positive_int
from goatpose_edge.fileio import IOPlan

NAME = "export"
HELP = "export a model to a TensorRT-ready ONNX file, checked against PyTorch"
OUTPUT_FLAGS = ("-o",)


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name, e.g. goatpose-bl (see goatpose info --all)")
    parser.add_argument("--weights", metavar="W.pth", help="checkpoint to load (default: random weights)")
    parser.add_argument("-o", "--output", metavar="FILE.onnx",
                        help="default: export/<model>_<H>x<W>[_b<N>][_flip].onnx")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset, 11..13 for trt8 (default 13)")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=positive_int, metavar="N", help="static batch size")
    batch.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis (the default)")
    parser.add_argument("--fliptest", action="store_true", help="merge the horizontally flipped input in the graph")
    parser.add_argument("--target", choices=("trt8", "trt10"), default="trt8",
                        help="TensorRT generation to lint for (default trt8: the TX2's 8.0/8.2)")
    parser.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                        help="person photo (and box) for the parity check; repeatable")
    add_trust_argument(parser)


def io_plan(args) -> IOPlan:
    from goatpose_edge.export import default_output_path
    from goatpose_edge.variants import get_variant

    plan = image_inputs(IOPlan().read("--weights", args.weights, expect=CHECKPOINT), "--image", args.image)
    if args.output:
        return plan.write(args.output, "-o", ONNX_SUFFIXES)
    default = default_output_path(get_variant(args.model).contract, args.batch, args.fliptest)
    return plan.write(default, "the default output", ONNX_SUFFIXES, create_parent=True)


def run(args) -> int:
    from goatpose_edge.export import export_onnx
    from goatpose_edge.variants import get_variant

    get_variant(args.model)  # unknown names fail before torch loads
    if not args.weights:
        print("WARNING: no --weights given: exporting {} with RANDOM weights (fine for speed, useless for "
              "poses; see the README for real weights)".format(args.model), file=sys.stderr)
    if not args.image:
        print("note: no --image given: parity is checked on seeded random input only; pass a person photo "
              "(IMG or IMG@x,y,w,h) to check it on a real crop too", file=sys.stderr)
    result = export_onnx(args.model, weights=args.weights, output=args.output, opset=args.opset, batch=args.batch,
                         fliptest=args.fliptest, target=args.target, images=args.image,
                         trusted=args.trust_checkpoint, log=print)
    dirt = {k: result.census[k] for k in ("bn_after_conv", "nam_weight_ops", "training_ops", "identity",
                                          "noop_slice", "duplicate_relu")}
    ops = ", ".join("{} {}".format(k[3:], v) for k, v in result.census.items() if k.startswith("op:"))
    print("graph: {} nodes ({}); left after clean-up: {}".format(result.census["nodes"], ops, dirt))
    for warning in result.lint.warnings:
        print("lint warning: " + warning)
    if args.weights and result.random_weights:  # an init checkpoint: still random, said again
        print("WARNING: " + result.contract.weights_warning(), file=sys.stderr)
    print("wrote {} ({} batch, opset {}, {}-compatible{})".format(
        result.path, result.batch or "dynamic", result.opset, args.target,
        ", RANDOM weights" if result.random_weights else ""))
    return 0
