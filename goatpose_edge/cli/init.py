"""``goatpose init``: a randomly initialised checkpoint in the toolkit's format (``models.checkpoint``)."""

from goatpose_edge.cli.common import CHECKPOINT_SUFFIXES, require_torch, seed
from goatpose_edge.fileio import IOPlan

NAME = "init"
HELP = "write a randomly initialised checkpoint (.pth) in the toolkit's format"
OUTPUT_FLAGS = ("-o",)


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.pth")
    parser.add_argument("--seed", type=seed, default=0)


def io_plan(args) -> IOPlan:  # random weights never replace a file, trained or not
    return IOPlan().write(args.output, "-o", CHECKPOINT_SUFFIXES, exist_ok=False)


def run(args) -> int:
    from goatpose_edge.variants import get_variant

    get_variant(args.model)
    require_torch("goatpose init")
    import torch

    from goatpose_edge.models import build_model
    from goatpose_edge.models.checkpoint import save_checkpoint

    from goatpose_edge.artefact.contract import RANDOM_WEIGHTS

    torch.manual_seed(args.seed)
    save_checkpoint(build_model(args.model), args.output, weights="{} (seed {})".format(RANDOM_WEIGHTS, args.seed))
    print("wrote {} ({} with RANDOM weights, seed {}: for speed tests and as a training start)".format(
        args.output, args.model, args.seed))
    return 0
