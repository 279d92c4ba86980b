"""``goatpose pose``: the poses of the persons in images, as JSON lines (``pipeline.TopDownPoseEstimator``)."""

import json

from goatpose_edge.cli.common import JSONL_SUFFIXES, artefact_input, detector_input
from goatpose_edge.fileio import IOPlan

NAME = "pose"
HELP = "poses of the persons in images, as JSON lines"
OUTPUT_FLAGS = ("-o",)


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .onnx or .pth")
    parser.add_argument("--model", help="model name for a .pth that does not record it")
    parser.add_argument("--detector", default="hog", metavar="hog|whole|FILE.onnx",
                        help="person detector (default: OpenCV's HOG, no files needed)")
    parser.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crops)")
    parser.add_argument("--post-process", choices=("quarter", "dark", "none"), default="quarter")
    parser.add_argument("-o", "--output", metavar="FILE.jsonl", help="write the JSON lines here instead of stdout")


def io_plan(args) -> IOPlan:
    plan = detector_input(artefact_input(IOPlan().read("IMAGE", *args.images), "--pose", args.pose), args.detector)
    return plan.write(args.output, "-o", JSONL_SUFFIXES)


def run(args) -> int:
    from goatpose_edge.detection import make_detector
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.imagefile import read_image
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import load_runner

    frames = [(path, read_image(path)) for path in args.images]  # every image first: a bad one fails before a model
    options = {"model_name": args.model} if args.pose.endswith((".pth", ".pt")) else {}
    post_process = None if args.post_process == "none" else args.post_process
    lines = []
    with make_detector(args.detector) as detector, load_runner(args.pose, **options) as runner:
        estimator = TopDownPoseEstimator(detector, runner, flip=args.flip, post_process=post_process)
        for path, frame in frames:
            persons = estimator(frame)
            lines.append(json.dumps({"image": path, "persons": [p.to_dict() for p in persons]}))
    if args.output:
        with atomic_output(args.output) as tmp_path:
            with open(tmp_path, "w") as f:
                f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    return 0
