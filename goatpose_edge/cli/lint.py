"""``goatpose lint``: can TensorRT 8 (or 10) parse this ONNX file (``export.lint``)."""

from goatpose_edge.cli.common import io_none
from goatpose_edge.errors import DependencyError

NAME = "lint"
HELP = "check that TensorRT 8 (or 10) can parse an ONNX file"
OUTPUT_FLAGS = ()
io_plan = io_none


def add_arguments(parser) -> None:
    parser.add_argument("onnx", metavar="FILE.onnx")
    parser.add_argument("--target", choices=("trt8", "trt10"), default="trt8")


def run(args) -> int:
    from goatpose_edge.export.lint import lint, load_model

    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise DependencyError("goatpose lint needs onnx: pip install onnx") from exc
    report = lint(load_model(args.onnx), args.target)  # one clear line for a missing, empty or corrupt file
    for warning in report.warnings:
        print("warning: " + warning)
    report.raise_for_violations(args.onnx)
    print("{}: {}-compatible".format(args.onnx, args.target))
    return 0
