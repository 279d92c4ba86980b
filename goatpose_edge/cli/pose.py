"""``goatpose pose``: the poses of the persons in images, as JSON lines (``pose_images``)."""

import sys

from goatpose_edge.cli.common import JSONL_SUFFIXES, add_overwrite_argument, artefact_input, detector_input
from goatpose_edge.fileio import IOPlan, Kind

NAME = "pose"
HELP = "poses of the persons in images with an .engine, .onnx or .pth, as JSON lines"
OUTPUT_FLAGS = ("-o", "--draw")


def add_arguments(parser) -> None:
    from goatpose_edge.codec import POST_PROCESS
    from goatpose_edge.pose_images import PoseOptions

    defaults = PoseOptions(pose="")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .engine, .onnx or .pth")
    parser.add_argument("--model", help="model name for a .pth that does not record it")
    parser.add_argument("--detector", default=defaults.detector, metavar="hog|whole|FILE",
                        help="person detector (default: OpenCV's HOG, no files needed), or a YOLO .onnx or its engine "
                        "(goatpose build yolov8n.onnx)")
    parser.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crops)")
    parser.add_argument("--post-process", choices=POST_PROCESS, default=defaults.post_process)
    parser.add_argument("-o", "--output", metavar="FILE.jsonl",
                        help="write the JSON lines here ({}) instead of stdout".format(" or ".join(JSONL_SUFFIXES)))
    parser.add_argument("--draw", metavar="DIR", help="also write each image with its poses drawn to DIR/NAME.jpg "
                        "(the folder is made; a name seen twice gets _2, _3, ...; an existing image is never "
                        "replaced without --overwrite)")
    add_overwrite_argument(parser)


def io_plan(args) -> IOPlan:
    plan = detector_input(artefact_input(IOPlan().read("IMAGE", *args.images), "--pose", args.pose), args.detector)
    plan.write(args.output, "-o", JSONL_SUFFIXES)
    plan.overwrite = args.overwrite
    if args.draw:  # the folder (made in one that exists), and images that replace nothing unless --overwrite
        plan.write(args.draw, "--draw", folder=True)
        for path in drawn_paths(args.images, args.draw):
            plan.write(path, "--draw", (".jpg",), create_parent=True, kind=DRAWN)
    return plan


#: a JPEG cannot say who wrote it: an existing image under a --draw name is replaced only with --overwrite
DRAWN = Kind("an image goatpose pose --draw can recognise as its own (none can be)", lambda path: False)


def drawn_paths(images, folder: str):
    """Where ``--draw`` writes each image: DIR/<name>.jpg, _2, _3, ... for names seen before."""
    import os

    seen, out = {}, []
    for image in images:
        stem = os.path.splitext(os.path.basename(image))[0] or "image"
        seen[stem] = seen.get(stem, 0) + 1
        out.append(os.path.join(folder, "{}{}.jpg".format(stem, "_{}".format(seen[stem]) if seen[stem] > 1 else "")))
    return out


def run(args) -> int:
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.pose_images import PoseOptions, pose_images

    options = PoseOptions(args.pose, args.detector, args.model, args.flip, args.post_process,
                          log=lambda line: print(line, file=sys.stderr))
    results = list(pose_images(args.images, options, keep_frames=bool(args.draw)))  # a bad image fails first
    lines = [result.to_json() for result in results]
    if args.draw:
        _draw(results, drawn_paths(args.images, args.draw))
    if args.output:
        with atomic_output(args.output) as tmp_path:
            with open(tmp_path, "w") as f:
                f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    return 0


def _draw(results, paths) -> None:
    """Each image with its poses (ids in order of the score), RANDOM WEIGHTS stamped where they are."""
    import cv2

    from goatpose_edge.draw import draw_persons
    from goatpose_edge.fileio import atomic_output

    for result, path in zip(results, paths):
        contract = result.contract
        image = draw_persons(result.frame.copy(), result.persons, contract.skeleton,
                             ids=list(range(len(result.persons))),
                             warning="RANDOM WEIGHTS: poses are noise" if contract.random_weights else None)
        with atomic_output(path) as tmp_path:
            if not cv2.imwrite(tmp_path, image):
                raise OSError("cannot encode {}".format(path))
        print("drew {}".format(path), file=sys.stderr)
