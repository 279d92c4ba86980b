"""``goatpose train``: COCO keypoint training with the paper's recipe (``train.trainer``; host side, torch).

Its arguments live beside ``TrainOptions`` (``train.options.add_train_arguments``, defaults from there): the torchrun
entry ``python -m goatpose_edge.train`` parses the same ones.
"""

import os

from goatpose_edge.cli.common import ANNOTATIONS, CHECKPOINT, UsageError, require_torch
from goatpose_edge.fileio import IOPlan, Kind
from goatpose_edge.train.options import add_train_arguments

NAME = "train"
HELP = "train a model on COCO keypoints with the paper's recipe (host, torch)"
OUTPUT_FLAGS = ("--out",)


def add_arguments(parser) -> None:
    add_train_arguments(parser)


#: a run's files belong to that run: a fresh run (or one resumed from elsewhere) never replaces them
ANOTHER_RUN = Kind("a file of this run (the folder holds another run)", lambda path: False)


def io_plan(args) -> IOPlan:
    """Checkpoints and log in --out; resuming from --out's own last.pth is the run continuing, not a collision:
    any other run's last.pth, best.pth or log.jsonl there is refused before any work."""
    from goatpose_edge.fileio import same_file
    from goatpose_edge.train.options import options_from_args

    if args.resume and args.init_from:
        raise UsageError("give --resume (continue a run) or --init-from (start one), not both")
    options = options_from_args(args).resolve()
    plan = IOPlan().read("--train-ann", options.train_ann, expect=ANNOTATIONS)
    plan.read("--val-ann", options.val_ann, expect=ANNOTATIONS)
    plan.read("--init-from", options.init_from, expect=CHECKPOINT)
    last = os.path.join(options.out, "last.pth")
    continuing = bool(options.resume) and same_file(options.resume, last)
    if not continuing:  # its own last.pth is read, then replaced by the next epoch's
        plan.read("--resume", options.resume, expect=CHECKPOINT)
    plan.write(options.out, "--out", folder=True, create_parent=not args.out)  # the default runs/MODEL is made
    remedy = "give --resume {} to continue that run, or choose another --out".format(last)
    for name in ("last.pth", "best.pth", "log.jsonl"):
        plan.write(os.path.join(options.out, name), "--out", create_parent=True,
                   kind=None if continuing else ANOTHER_RUN, remedy=remedy)
    return plan


def run(args) -> int:
    require_torch("goatpose train")
    from goatpose_edge.train.options import options_from_args
    from goatpose_edge.train.trainer import train

    result = train(options_from_args(args))
    print("trained {} epoch(s); best AP {}; checkpoints in {}".format(
        result["epochs_run"], "{:.4f}".format(result["best_ap"]) if result["best_ap"] >= 0 else "not validated",
        result["out"]))
    return 0
