"""``goatpose build``: a TensorRT engine and its sidecar from an exported ONNX file (``engines.builder``): a pose
model of ``goatpose export``, or a YOLO person detector (an ONNX without a goatpose contract)."""

import sys

from goatpose_edge.cli.common import (UsageError, add_calibration_arguments, add_overwrite_argument,
                                      calibration_inputs, calibration_sources, image_inputs, non_negative_int,
                                      positive_int)
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import IOPlan

NAME = "build"
HELP = "build a TensorRT engine (+ sidecar JSON) from an exported pose ONNX or a YOLO detector ONNX"
OUTPUT_FLAGS = ("-o", "--timing-cache")


def add_arguments(parser) -> None:
    from goatpose_edge.engines.builder import BuildOptions
    from goatpose_edge.engines.policy import PRECISIONS

    defaults = BuildOptions()
    parser.add_argument("onnx", metavar="MODEL.onnx", help="an ONNX of goatpose export (or goatpose quantize), or a "
                        "YOLOX/YOLOv5/YOLOv8 detector ONNX of a fixed size (then FP16/FP32, batch 1 by default)")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)
    add_calibration_arguments(parser)
    parser.add_argument("--batch", type=positive_int, metavar="N",
                        help="fixed batch size (else --min/--opt/--max-batch, default 1/4/8; a detector: 1)")
    parser.add_argument("--min-batch", type=positive_int, metavar="N")
    parser.add_argument("--opt-batch", type=positive_int, metavar="N")
    parser.add_argument("--max-batch", type=positive_int, metavar="N")
    parser.add_argument("--workspace", type=positive_int, default=defaults.workspace_mib, metavar="MiB",
                        help="builder workspace ({})".format(defaults.workspace_mib))
    parser.add_argument("--timing-cache", metavar="FILE",
                        help="reuse and update a timing cache, e.g. engines/timing.cache")
    parser.add_argument("--dla-core", type=non_negative_int, metavar="N",
                        help="build for a DLA core (Xavier/Orin; the TX2 has none)")
    parser.add_argument("--force", action="store_true", help="build a precision the GPU has no fast path for")
    parser.add_argument("-o", "--output", metavar="FILE.engine",
                        help="the engine: .engine, .plan or .trt, its sidecar .json beside it (default: engines/"
                        "<model>_<HxW>_<precision>_b<min>-<max>_trt<version>_<gpu>.engine)")
    parser.add_argument("--print-trtexec", action="store_true",
                        help="also print the trtexec command that makes the same engine (goatpose still builds it: "
                        "not a dry run)")
    parser.add_argument("--verify", action="store_true", help="compare the engine with onnxruntime on real crops")
    parser.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                        help="person photo for --verify (besides the calibration crops)")
    parser.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    add_overwrite_argument(parser)


def _profile(args):
    """The batch profile asked for, or None when no batch option is given (the model kind's default)."""
    from goatpose_edge.engines.builder import BatchProfile

    given = (args.batch, args.min_batch, args.opt_batch, args.max_batch)
    try:
        profile = BatchProfile.requested(*given)
    except GoatPoseError as exc:
        raise UsageError(str(exc)) from exc
    return profile if any(value is not None for value in given) else None


def _check_usage(args) -> None:
    calibration = [flag for flag, given in (("--calib-images", args.calib_images), ("--calib-coco", args.calib_coco),
                                            ("--calib-count", args.calib_count is not None)) if given]
    if calibration and args.precision != "int8" and not args.verify:  # --verify compares on those images too
        raise UsageError("{} calibrate{} an INT8 build: add --precision int8 (building {} now)".format(
            ", ".join(calibration), "s" if len(calibration) == 1 else "", args.precision))
    if args.image and not args.verify:
        raise UsageError("--image is a photo for --verify: add --verify")
    if args.verify and not (args.image or args.calib_images or args.calib_coco):  # said before the build, not after
        raise UsageError("--verify compares the engine with onnxruntime on real images: give --image IMG (a person "
                         "photo; repeatable) or --calib-images DIR / --calib-coco ANN IMGDIR")
    _profile(args)


def io_plan(args) -> IOPlan:
    """The engine, its sidecar, (INT8) the calibration cache and its record, and the timing cache
    (``builder.build_outputs``); without -o the default name, derived from the platform, is checked by
    ``build_engine`` against the same inputs before the build."""
    from goatpose_edge.engines.builder import TIMING_CACHE_SUFFIXES, build_outputs

    _check_usage(args)
    plan = IOPlan(overwrite=args.overwrite).read("MODEL.onnx", args.onnx)
    plan = image_inputs(calibration_inputs(plan, args), "--image", args.image)
    if args.output:
        plan.outputs.extend(build_outputs(args.output, args.precision == "int8", args.timing_cache, option="-o",
                                          create_parent=False))
        return plan
    return plan.write(args.timing_cache, "--timing-cache", TIMING_CACHE_SUFFIXES)


def run(args) -> int:
    from goatpose_edge.artefact.sidecar import sidecar_path
    from goatpose_edge.engines.builder import BuildOptions, build_engine
    from goatpose_edge.engines.verify import reject_failed, verify_detector, verify_engine

    sources, label = calibration_sources(args)
    count = args.calib_count or BuildOptions().calib_count
    options = BuildOptions(precision=args.precision, profile=_profile(args), workspace_mib=args.workspace,
                           timing_cache=args.timing_cache, dla_core=args.dla_core, force=args.force,
                           calib_sources=sources, calib_count=count, calib_label=label, verbose=args.verbose,
                           overwrite=args.overwrite)
    result = build_engine(args.onnx, args.output, options, log=print)
    sidecar = result.sidecar
    contract = sidecar.model_contract
    warning = contract.weights_warning() if contract is not None else ""
    if warning:
        print(warning, file=sys.stderr)
    print("wrote {} + {} ({}{} requested, {} built, TensorRT {}, {}, batch {}..{}, {:.0f} s)".format(
        result.engine_path, sidecar_path(result.engine_path),
        "" if contract is not None else "a {} person detector: ".format(sidecar.detector["layout"]),
        sidecar.requested_precision,
        sidecar.effective_precision, sidecar.tensorrt_version, sidecar.gpu_name, sidecar.batch_profile["min"],
        sidecar.batch_profile["max"], sidecar.build_seconds))
    if args.print_trtexec:
        print("the same engine with trtexec (built above by goatpose; --print-trtexec does not skip the build):")
        print(result.trtexec)
    if args.verify and contract is None:  # a detector: whole images, the calibration folder's included
        images = list(args.image) + sorted({path for path, _ in sources})[:16]
        report = verify_detector(args.onnx, result.engine_path, images)
        print(report.line())
        reject_failed(report, result.engine_path, None, sidecar.precision_graph)
    elif args.verify:
        report = verify_engine(args.onnx, result.engine_path, sources[:16], args.image)
        print(report.line())
        reject_failed(report, result.engine_path, (sidecar.calibration or {}).get("cache"), sidecar.precision_graph)
    return 0
