"""``goatpose info``: params, conv MACs and shapes of models beside the paper's figures (``models.complexity``)."""

import json

from goatpose_edge.cli.common import io_none, require_torch
from goatpose_edge.errors import GoatPoseError

NAME = "info"
HELP = "params, conv MACs and shapes of a model, beside the paper's figures"
OUTPUT_FLAGS = ()
io_plan = io_none


def add_arguments(parser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL", help="model name(s), e.g. goatpose-bl hrnet-w32")
    parser.add_argument("--all", action="store_true", help="every model in the table")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from goatpose_edge.variants import VARIANTS, get_variant

    if not args.models and not args.all:
        raise GoatPoseError("name a model or pass --all; known models: {}".format(", ".join(VARIANTS)))
    if args.models and args.all:
        raise GoatPoseError("give model names or --all, not both")
    cfgs = list(VARIANTS.values()) if args.all else [get_variant(name) for name in args.models]
    require_torch("goatpose info")
    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import complexity_record, complexity_table, measure

    rows = [measure(cfg, build_model(cfg.name)) for cfg in cfgs]
    if args.json:
        print(json.dumps([complexity_record(c) for c in rows], indent=2))
    else:
        print(complexity_table(rows))
        print("\nparams: all parameter elements; conv MACs at batch 1; dev: ours vs the paper (Tables 2-3), in %.")
    return 0
