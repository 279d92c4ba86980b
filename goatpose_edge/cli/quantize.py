"""``goatpose quantize``: an INT8 Q/DQ ONNX file from onnxruntime and its measured accuracy cost (``engines.qdq``)."""

import os

from goatpose_edge.cli.common import ONNX_SUFFIXES, add_calibration_arguments, calibration_inputs, calibration_sources
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import IOPlan

NAME = "quantize"
HELP = "INT8 Q/DQ ONNX with onnxruntime, and its measured accuracy cost"
OUTPUT_FLAGS = ("-o",)


def add_arguments(parser) -> None:
    parser.add_argument("onnx", metavar="MODEL.onnx")
    add_calibration_arguments(parser)
    parser.add_argument("-o", "--output", metavar="FILE.onnx", help="default: <MODEL>_qdq.onnx")


def _qdq_output(args) -> str:
    return args.output or os.path.splitext(args.onnx)[0] + "_qdq.onnx"


def io_plan(args) -> IOPlan:
    plan = calibration_inputs(IOPlan().read("MODEL.onnx", args.onnx), args)
    return plan.write(_qdq_output(args), "-o" if args.output else "the default output", ONNX_SUFFIXES)


def run(args) -> int:
    from goatpose_edge.engines.builder import BuildOptions
    from goatpose_edge.engines.calibration import calibration_crops
    from goatpose_edge.engines.qdq import qdq_accuracy, quantize_qdq
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.artefact.onnx_meta import read_contract

    sources, _ = calibration_sources(args)
    if not sources:
        raise GoatPoseError("quantization needs calibration images: --calib-images DIR or --calib-coco ANN IMGDIR")
    count = args.calib_count or BuildOptions().calib_count  # as many crops as an INT8 build takes
    crops = calibration_crops(sources, read_contract(args.onnx), count)
    output = _qdq_output(args)
    print("calibrating on {} person crops ...".format(len(crops)))
    with atomic_output(output) as tmp_path:  # in place only once its heatmaps passed the check
        quantize_qdq(args.onnx, crops, tmp_path)
        report = qdq_accuracy(args.onnx, tmp_path, crops)
    print(report.line())
    print("wrote {} (build it with: goatpose build {} --precision int8)".format(output, output))
    return 0
