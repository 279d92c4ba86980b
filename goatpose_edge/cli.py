"""The ``goatpose`` command: thin subcommands over library functions.

Errors a user can act on (``GoatPoseError``) are printed as one line with exit status 1; Ctrl-C exits 130; anything
else is a bug and is reported in one line too (``GOATPOSE_DEBUG=1`` shows the traceback).
"""

import argparse
import json
import os
import sys
import traceback

from goatpose_edge import __version__
from goatpose_edge.errors import DependencyError, GoatPoseError


def _require_torch(step: str):
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyError("{} needs PyTorch (host side): pip install 'goatpose-edge[host]'".format(step)) from exc


def cmd_info(args) -> int:
    from goatpose_edge.variants import VARIANTS, get_variant

    if not args.models and not args.all:
        raise GoatPoseError("name a model or pass --all; known models: {}".format(", ".join(VARIANTS)))
    cfgs = list(VARIANTS.values()) if args.all else [get_variant(name) for name in args.models]
    _require_torch("goatpose info")
    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import complexity_record, complexity_table, measure

    rows = [measure(cfg, build_model(cfg.name)) for cfg in cfgs]
    if args.json:
        print(json.dumps([complexity_record(c) for c in rows], indent=2))
    else:
        print(complexity_table(rows))
        print("\nparams: all parameter elements; conv MACs at batch 1; dev: ours vs the paper (Tables 2-3), in %.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goatpose", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version="goatpose-edge " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="params, conv MACs and shapes of a model, beside the paper's figures")
    info.add_argument("models", nargs="*", metavar="MODEL", help="model name(s), e.g. goatpose-bl hrnet-w32")
    info.add_argument("--all", action="store_true", help="every model in the table")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GoatPoseError as exc:
        print("goatpose: error: {}".format(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("goatpose: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless asked for more
        if os.environ.get("GOATPOSE_DEBUG"):
            traceback.print_exc()
        print("goatpose: internal error: {}: {} (set GOATPOSE_DEBUG=1 for the traceback and please report it)".format(
            type(exc).__name__, exc), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
