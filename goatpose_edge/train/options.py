"""Options of ``goatpose train`` (torch-free, so the CLI can build its parser on the device)."""

import argparse
import math
import os
import re
from dataclasses import dataclass, fields
from typing import Optional

from goatpose_edge.errors import GoatPoseError


class TrainOptionError(GoatPoseError, ValueError):
    """A training option outside its range."""


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(minimum: int, optional: bool = False):
    def check(flag, value):
        if optional and value is None:
            return
        if not _is_int(value) or value < minimum:
            raise TrainOptionError("{} must be a whole number >= {}, got {!r}".format(flag, minimum, value))
        if flag == "--seed" and value >= 2 ** 32:  # numpy and torch seeds are 32/64-bit
            raise TrainOptionError("--seed must be below 2**32, got {}".format(value))

    return check


def _finite(positive: bool):
    def check(flag, value):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or value < 0 or (positive and value == 0):
            raise TrainOptionError("{} must be a finite number {} 0, got {!r}".format(
                flag, ">" if positive else ">=", value))

    return check


def _device(flag, value):
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise TrainOptionError("{} must be auto, cpu, cuda, cuda:N or mps, got {!r}".format(flag, value))


#: field -> (its flag, its check): run by ``validate`` and, as argparse types, when the command line is parsed
_FIELD_CHECKS = {
    "epochs": ("--epochs", _whole(1)),  # 0 epochs would train nothing yet claim checkpoints
    "batch_size": ("--batch-size", _whole(1)),
    "workers": ("--workers", _whole(0)),
    "val_every": ("--val-every", _whole(1)),
    "val_limit": ("--val-limit", _whole(1, optional=True)),
    "max_iters": ("--max-iters", _whole(1, optional=True)),
    "seed": ("--seed", _whole(0)),
    "log_every": ("--log-every", _whole(1)),
    "lr": ("--lr", _finite(positive=True)),
    "nam_penalty": ("--nam-penalty", _finite(positive=False)),
    "device": ("--device", _device),
}


def _parsed(name: str, convert):
    """The argparse type of field ``name``: ``convert`` then the field's check, a bad value a usage error (exit 2)."""
    flag, check = _FIELD_CHECKS[name]

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected {}, got {!r}".format(
                "a whole number" if convert is int else "a number", text)) from None
        try:
            check(flag, value)
        except TrainOptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse.__name__ = name
    return parse


@dataclass
class TrainOptions:
    model: str
    coco_root: str = ""
    train_ann: Optional[str] = None  # default ROOT/annotations/person_keypoints_train2017.json
    train_images: Optional[str] = None  # default ROOT/train2017
    val_ann: Optional[str] = None  # default ROOT/annotations/person_keypoints_val2017.json (if present)
    epochs: int = 280
    batch_size: int = 32
    workers: int = 4
    amp: bool = False
    resume: Optional[str] = None
    init_from: Optional[str] = None
    val_every: int = 10
    val_limit: Optional[int] = None
    out: str = ""
    lr: float = 1e-3
    nam_penalty: float = 1e-4
    max_iters: Optional[int] = None  # per epoch (quick runs and tests)
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    trust_checkpoint: bool = False  # --resume / --init-from may unpickle Python objects

    def __post_init__(self):
        self.validate()

    def validate(self) -> "TrainOptions":
        """Refuse values that cannot train (checked wherever options are built: CLI, torchrun entry, library)."""
        from goatpose_edge.variants import get_variant

        get_variant(self.model)  # unknown names fail with the list of known ones
        for name, (flag, check) in _FIELD_CHECKS.items():
            check(flag, getattr(self, name))
        if self.resume and self.init_from:
            raise TrainOptionError("give --resume (continue a run) or --init-from (start one), not both")
        if self.coco_root and not os.path.isdir(self.coco_root):
            raise TrainOptionError("COCO root {} is not a folder".format(self.coco_root))
        return self

    def resolve(self) -> "TrainOptions":
        root = self.coco_root
        self.train_ann = self.train_ann or os.path.join(root, "annotations", "person_keypoints_train2017.json")
        self.train_images = self.train_images or os.path.join(root, "train2017")
        default_val = os.path.join(root, "annotations", "person_keypoints_val2017.json")
        self.val_ann = self.val_ann or (default_val if os.path.isfile(default_val) else None)
        self.out = self.out or os.path.join("runs", self.model)
        return self


def _as_written(value: float) -> str:
    """A coefficient as a help text writes it: 1e-4 (``str`` gives 0.0001)."""
    mantissa, exponent = "{:e}".format(value).split("e")
    return "{}e{}".format(mantissa.rstrip("0").rstrip("."), int(exponent))


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """``goatpose train``'s arguments, also parsed by the torchrun entry (``python -m goatpose_edge.train``); the
    defaults are ``TrainOptions``'s."""
    default = {f.name: f.default for f in fields(TrainOptions)}
    parser.add_argument("model", metavar="MODEL", help="e.g. goatpose-bl (see goatpose info --all)")
    parser.add_argument("--coco-root", default=default["coco_root"], metavar="DIR",
                        help="COCO folder with annotations/, train2017/ and val2017/")
    parser.add_argument("--train-ann", metavar="FILE", help="default DIR/annotations/person_keypoints_train2017.json")
    parser.add_argument("--train-images", metavar="DIR", help="default DIR/train2017")
    parser.add_argument("--val-ann", metavar="FILE", help="default DIR/annotations/person_keypoints_val2017.json")
    parser.add_argument("--epochs", type=_parsed("epochs", int), default=default["epochs"])
    parser.add_argument("--batch-size", type=_parsed("batch_size", int), default=default["batch_size"],
                        help="per process (GPU)")
    parser.add_argument("--workers", type=_parsed("workers", int), default=default["workers"],
                        help="data loader processes per GPU")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    parser.add_argument("--resume", metavar="CKPT", help="continue a run from its last.pth")
    parser.add_argument("--init-from", metavar="HRNET.pth", help="start from an official HRNet checkpoint")
    parser.add_argument("--val-every", type=_parsed("val_every", int), default=default["val_every"], metavar="N",
                        help="validate every N epochs ({})".format(default["val_every"]))
    parser.add_argument("--val-limit", type=_parsed("val_limit", int), metavar="N",
                        help="validate on the first N images only")
    parser.add_argument("--out", metavar="runs/NAME", help="checkpoints and log (default runs/MODEL)")
    parser.add_argument("--lr", type=_parsed("lr", float), default=default["lr"])
    parser.add_argument("--nam-penalty", type=_parsed("nam_penalty", float), default=default["nam_penalty"],
                        help="NAM L1 sparsity coefficient ({})".format(_as_written(default["nam_penalty"])))
    parser.add_argument("--max-iters", type=_parsed("max_iters", int), metavar="N",
                        help="iterations per epoch at most (quick runs)")
    parser.add_argument("--seed", type=_parsed("seed", int), default=default["seed"])
    parser.add_argument("--device", type=_parsed("device", str), default=default["device"],
                        help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--log-every", type=_parsed("log_every", int), default=default["log_every"], metavar="N",
                        help="log every N iterations")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a --resume or --init-from checkpoint that pickles Python objects (unpickling can "
                        "run code)")


def options_from_args(args) -> TrainOptions:
    names = [f for f in TrainOptions.__dataclass_fields__]
    return TrainOptions(**{name: getattr(args, name) for name in names if hasattr(args, name)})
