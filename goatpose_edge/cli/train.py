"""``goatpose train``: COCO keypoint training with the paper's recipe (``train.trainer``; host side, torch).

Its arguments live beside ``TrainOptions`` (``train.options.add_train_arguments``, defaults from there): the torchrun
entry ``python -m goatpose_edge.train`` parses the same ones.
"""

import os

from goatpose_edge.cli.common import require_torch
from goatpose_edge.fileio import IOPlan
from goatpose_edge.train.options import add_train_arguments

NAME = "train"
HELP = "train a model on COCO keypoints with the paper's recipe (host, torch)"
OUTPUT_FLAGS = ("--out",)


def add_arguments(parser) -> None:
    add_train_arguments(parser)


def io_plan(args) -> IOPlan:
    """Checkpoints and log in --out; resuming from --out's own last.pth is the run continuing, not a collision."""
    from goatpose_edge.fileio import same_file
    from goatpose_edge.train.options import options_from_args

    options = options_from_args(args).resolve()
    plan = IOPlan().read("--train-ann", options.train_ann).read("--val-ann", options.val_ann)
    plan.read("--init-from", options.init_from)
    last = os.path.join(options.out, "last.pth")
    if options.resume and not same_file(options.resume, last):
        plan.read("--resume", options.resume)
    plan.write(options.out, "--out", folder=True, create_parent=not args.out)  # the default runs/MODEL is made
    for name in ("last.pth", "best.pth", "log.jsonl"):
        plan.write(os.path.join(options.out, name), "--out", create_parent=True)
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
