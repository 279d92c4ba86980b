"""``goatpose pose``: the poses of the persons in images, as JSON lines (``pose_images``)."""

import sys

from goatpose_edge.cli.common import JSONL_SUFFIXES, artefact_input, detector_input
from goatpose_edge.fileio import IOPlan

NAME = "pose"
HELP = "poses of the persons in images with an .engine, .onnx or .pth, as JSON lines"
OUTPUT_FLAGS = ("-o",)


def add_arguments(parser) -> None:
    from goatpose_edge.codec import POST_PROCESS
    from goatpose_edge.pose_images import PoseOptions

    defaults = PoseOptions(pose="")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .engine, .onnx or .pth")
    parser.add_argument("--model", help="model name for a .pth that does not record it")
    parser.add_argument("--detector", default=defaults.detector, metavar="hog|whole|FILE.onnx",
                        help="person detector (default: OpenCV's HOG, no files needed)")
    parser.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crops)")
    parser.add_argument("--post-process", choices=POST_PROCESS, default=defaults.post_process)
    parser.add_argument("-o", "--output", metavar="FILE.jsonl",
                        help="write the JSON lines here ({}) instead of stdout".format(" or ".join(JSONL_SUFFIXES)))


def io_plan(args) -> IOPlan:
    plan = detector_input(artefact_input(IOPlan().read("IMAGE", *args.images), "--pose", args.pose), args.detector)
    return plan.write(args.output, "-o", JSONL_SUFFIXES)


def run(args) -> int:
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.pose_images import PoseOptions, pose_images

    options = PoseOptions(args.pose, args.detector, args.model, args.flip, args.post_process,
                          log=lambda line: print(line, file=sys.stderr))
    lines = [result.to_json() for result in pose_images(args.images, options)]  # a bad image fails before a model
    if args.output:
        with atomic_output(args.output) as tmp_path:
            with open(tmp_path, "w") as f:
                f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    return 0
