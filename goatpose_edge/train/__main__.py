"""``python -m goatpose_edge.train MODEL ...``: the entry torchrun launches (one process per GPU)."""

import argparse
import sys

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.train.options import add_train_arguments, options_from_args
from goatpose_edge.train.trainer import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goatpose_edge.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    try:
        train(options_from_args(parser.parse_args(argv)))
    except GoatPoseError as exc:
        print("goatpose train: error: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
