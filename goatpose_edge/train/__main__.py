"""``python -m goatpose_edge.train MODEL ...``: the entry torchrun launches (one process per GPU)."""

import argparse
import sys

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.train.options import add_train_arguments, options_from_args
from goatpose_edge.train.trainer import TrainingTerminated, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goatpose_edge.train", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    try:
        train(options_from_args(parser.parse_args(argv)))
    except GoatPoseError as exc:
        print("goatpose train: error: {}".format(exc), file=sys.stderr)
        return 1
    except TrainingTerminated:  # SIGTERM from torchrun or a scheduler (see goatpose_edge.signals)
        print("goatpose train: terminated (SIGTERM); no half-written checkpoint was left", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("goatpose train: interrupted; no half-written checkpoint was left", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
