"""``goatpose eval``: COCO keypoint AP of an artefact with HRNet's protocol (``bench.coco_eval``, pycocotools).

(The module is not called ``eval``: that would shadow the builtin where the package imports its commands.)
"""

import json
import os
import shlex
import sys

from goatpose_edge.codec import POST_PROCESS
from goatpose_edge.cli.common import (ANNOTATIONS, add_overwrite_argument, add_trust_argument, artefact_input,
                                      name_prefix, positive_int, thread_count)
from goatpose_edge.fileio import IOPlan

NAME = "eval"
HELP = "COCO keypoint AP of an artefact with HRNet's protocol (pycocotools)"
OUTPUT_FLAGS = ("--out",)


def add_arguments(parser) -> None:
    parser.add_argument("artefact", metavar="ARTEFACT", help=".onnx, .engine or .pth")
    parser.add_argument("--coco-root", required=True, metavar="DIR",
                        help="COCO folder (images in DIR/val2017, DIR/images/val2017 or DIR)")
    parser.add_argument("--ann", metavar="FILE", help="default: DIR/annotations/person_keypoints_val2017.json")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--det-json", metavar="FILE", help="person detections (COCO results), e.g. HRNet's AP 56 boxes")
    boxes.add_argument("--gt-boxes", action="store_true", help="ground-truth person boxes (the default)")
    parser.add_argument("--flip", dest="flip", action="store_true", default=True, help="flip test (default on)")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--post-process", choices=POST_PROCESS, default="quarter")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="first N images only, for quick runs")
    parser.add_argument("--threads", type=thread_count, metavar="N", help="CPU threads for onnxruntime/torch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", metavar="benchmarks/NAME",
                        help="write NAME.json (AP; goatpose bench --out in the same folder plots it against fps) and "
                        "NAME_results.json")
    add_overwrite_argument(parser)
    add_trust_argument(parser)


def io_plan(args) -> IOPlan:
    """The artefact, the annotations and boxes; NAME.json and NAME_results.json, each replacing only its kind."""
    ann = args.ann or os.path.join(args.coco_root, "annotations", "person_keypoints_val2017.json")
    plan = artefact_input(IOPlan(overwrite=args.overwrite), "ARTEFACT", args.artefact)
    plan.read("--ann", ann, expect=ANNOTATIONS).read("--det-json", args.det_json)
    if args.out is not None:
        from goatpose_edge.bench.coco_eval import EVAL_RESULTS
        from goatpose_edge.bench.report import EVAL_RECORD

        prefix = name_prefix(args.out)
        plan.write(prefix + ".json", "--out", (".json",), kind=EVAL_RECORD)
        plan.write(prefix + "_results.json", "--out", (".json",), kind=EVAL_RESULTS)
    return plan


def run(args) -> int:
    from goatpose_edge.artefact.sidecar import sha256_of
    from goatpose_edge.bench.coco_eval import evaluate_runner, prepare_eval, write_results
    from goatpose_edge.bench.env import environment
    from goatpose_edge.bench.report import EVAL_FORMAT, utc_now, write_text
    from goatpose_edge.runtime import open_runner

    post_process = None if args.post_process == "none" else args.post_process
    inputs = prepare_eval(args.coco_root, args.ann, args.det_json, args.limit)  # bad annotations fail before the model
    with open_runner(args.artefact, args.threads, trusted=args.trust_checkpoint) as runner:
        warning = runner.pose_contract().weights_warning()
        if warning:  # the AP of random weights is near 0: said before the evaluation, not after
            print(warning, file=sys.stderr)
        result = evaluate_runner(runner, args.coco_root, args.ann, args.det_json, flip=args.flip, limit=args.limit,
                                 post_process=post_process, progress=not args.no_progress, inputs=inputs)
        artefact = os.path.basename(runner.path)
        backend, model = runner.backend, runner.contract.name
    print("{} ({} {}): {} on {} images, {} boxes -> {} persons, {:.1f} s".format(
        artefact, backend, model, result.line(), result.images, result.boxes, result.persons, result.seconds))
    if args.out is not None:
        record = {"format": EVAL_FORMAT, "created": utc_now(), "artefact": artefact,
                  "artefact_sha256": sha256_of(args.artefact),  # how bench's AP-vs-fps plot knows the same file
                  "backend": backend, "model": model,
                  "command": "goatpose " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                  "environment": environment(args.threads)}
        record.update(result.to_dict())
        prefix = name_prefix(args.out)
        write_results(prefix + "_results.json", result.results)
        write_text(prefix + ".json", json.dumps(record, indent=2) + "\n")
        print("wrote {0}.json and {0}_results.json".format(prefix))
    return 0
