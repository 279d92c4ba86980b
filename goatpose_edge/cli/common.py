"""What several ``goatpose`` commands share: argparse types, the ``IOPlan`` helpers, the calibration options."""

import argparse
import os
from typing import List, Optional

from goatpose_edge.errors import DependencyError, GoatPoseError
from goatpose_edge.fileio import FOLDER, PROTECT_ONLY, Expect, IOPlan, not_a_file
from goatpose_edge.runtime import ARTEFACT_SUFFIXES

# What each command writes, by ending (``IOPlan.write``); sidecars and caches are derived from these.
ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = tuple(s for s, backend in ARTEFACT_SUFFIXES.items() if backend == "torch")  # the runtime's
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class UsageError(GoatPoseError, ValueError):
    """A command-line mistake argparse cannot see (options that contradict or do nothing together): exit status 2,
    like argparse's own errors, raised by a command's ``io_plan`` before any work."""


def require_torch(step: str):
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyError("{} needs PyTorch (host side): pip install 'goatpose-edge[host]'".format(step)) from exc


# -- what a command reads and writes (``IOPlan``), checked before any work


ARTEFACT = Expect(missing="artefact not found: {path} ({option})")
CHECKPOINT = Expect(missing="checkpoint not found: {path} ({option})")
IMAGE = Expect(missing="cannot read image {path}: not found ({option})")
VIDEO = Expect(missing="video not found: {path} ({option})")
ANNOTATIONS = Expect(missing="annotation file not found: {path} ({option})")


def artefact_input(plan: IOPlan, option: str, path, expect: Expect = ARTEFACT) -> IOPlan:
    """An artefact the command reads and, for a TensorRT engine, the sidecar JSON beside it (the runner says what a
    missing sidecar means)."""
    from goatpose_edge.artefact.sidecar import ENGINE_SUFFIXES, sidecar_path

    plan.read(option, path, expect=expect)
    if path and path.lower().endswith(ENGINE_SUFFIXES):
        plan.read("the sidecar of " + option, sidecar_path(path), expect=PROTECT_ONLY)
    return plan


def image_inputs(plan: IOPlan, option: str, specs) -> IOPlan:
    """The photos of ``--image IMG[@x,y,w,h]`` (split as ``image_args.parse_image_arg`` splits them)."""
    from goatpose_edge.image_args import parse_image_arg

    return plan.read(option, *(parse_image_arg(spec)[0] for spec in specs or ()), expect=IMAGE)


def detector_input(plan: IOPlan, spec) -> IOPlan:
    return artefact_input(plan, "--detector", spec) if spec and os.path.exists(spec) else plan


def calibration_inputs(plan: IOPlan, args) -> IOPlan:
    if getattr(args, "calib_coco", None):
        plan.read("--calib-coco", args.calib_coco[0]).read("--calib-coco", args.calib_coco[1], expect=FOLDER)
    return plan.read("--calib-images", getattr(args, "calib_images", None), expect=FOLDER)


def name_prefix(out: str, option: str = "--out") -> str:
    """``--out NAME`` of bench/eval: a name the files' endings are added to, never a folder."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out) or not os.path.basename(out):
        raise GoatPoseError("{} {} is a folder; give a name in it, e.g. {}".format(
            option, out, os.path.join(out.rstrip("/" + os.sep) or ".", "bench")))
    return out


def add_overwrite_argument(parser) -> None:
    """``--overwrite``: the files a command derives from its output name may replace files it did not write."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files under the derived output names even when this command did not write "
                        "them (refused by default)")


def io_none(args) -> IOPlan:
    """A command that writes no file."""
    return IOPlan()


def add_trust_argument(parser) -> None:
    """``--trust-checkpoint``, on every command that reads a checkpoint (the refusal of a pickled one names it)."""
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that pickle Python objects (unpickling can run code)")


# -- argparse types: a bad value is one line naming what was expected


def detector_spec(text: str) -> str:
    """--detector: a detector file, or a name ``detection.make_detector`` accepts (checked by making it: 'hog:0' and
    typos are command-line mistakes, found before any model loads)."""
    from goatpose_edge.detection import DetectorError, make_detector

    if os.path.lexists(text):
        problem = not_a_file(text)
        if problem:
            raise argparse.ArgumentTypeError("{} {}; expected hog, hog:W, whole or a detector file (.onnx, "
                                             ".engine)".format(text, problem))
        return text
    if os.sep in text or os.path.splitext(text)[1].lower() in ARTEFACT_SUFFIXES:
        raise argparse.ArgumentTypeError("detector file {} not found (or give hog, hog:W or whole)".format(text))
    try:
        make_detector(text).close()
    except DetectorError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


detector_spec.__name__ = "detector"


def counted_int(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected {}, got {!r}".format(what, text))
        if value < minimum:
            raise argparse.ArgumentTypeError("expected {}, got {}".format(what, value))
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = counted_int(1, "a positive integer")
non_negative_int = counted_int(0, "an integer >= 0")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive number, got {!r}".format(text))
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("expected a positive finite number, got {}".format(text))
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number >= 0, got {!r}".format(text))
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected a finite number >= 0, got {}".format(text))
    return value


def seed(text: str) -> int:
    value = non_negative_int(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError("expected a seed below 2**32, got {}".format(value))
    return value


def thread_count(text: str) -> int:
    """--threads, --workers: 1 .. 4x this machine's CPUs (a typo like 100000 would start that many threads)."""
    value = positive_int(text)
    cpus = os.cpu_count() or 1
    if value > 4 * cpus:
        raise argparse.ArgumentTypeError("expected at most {} (4 x the {} CPUs here), got {}".format(
            4 * cpus, cpus, value))
    return value


#: --workers and --detect-workers: bounded like --threads (each worker is a thread, or several)
worker_count = thread_count


def int_list(text: str):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, e.g. 1,4,8, got {!r}".format(text))
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive sizes, e.g. 1,4,8, got {!r}".format(text))
    return values


#: file descriptors one replayed video stream may hold (the capture, its decoder, the engine's threads' pipes)
FDS_PER_STREAM = 8


def stream_counts(text: str):
    """``--streams 1,3``: positive counts, each at most what the open-file limit allows (every stream opens the
    video again): bounded like ``--workers``, so 100000 streams are one line, not a run out of file descriptors."""
    values = int_list(text)
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        limit = 1024
    top = max(1, min(256, limit // FDS_PER_STREAM)) if limit > 0 else 256
    if max(values) > top:
        raise argparse.ArgumentTypeError("at most {} streams here (each opens the video again; the open-file limit is "
                                         "{}, ulimit -n), got {}".format(top, limit, max(values)))
    return values


def word_list(*choices):
    def parse(text: str) -> List[str]:
        words = [w.strip() for w in text.split(",") if w.strip()]
        bad = [w for w in words if w not in choices]
        if not words or bad:
            raise argparse.ArgumentTypeError("expected a comma-separated list of {}, got {!r}".format(
                ", ".join(choices), text))
        return words

    parse.__name__ = "list"
    return parse


def workers_list(text: str) -> List[Optional[int]]:
    values = []
    for word in (w.strip() for w in text.split(",") if w.strip()):
        values.append(None if word == "auto" else worker_count(word))
    if not values:
        raise argparse.ArgumentTypeError("expected auto or worker counts, e.g. auto,1,2, got {!r}".format(text))
    return values


# -- the calibration crops of ``goatpose build --precision int8`` and ``goatpose quantize``


def add_calibration_arguments(parser) -> None:
    from goatpose_edge.engines.builder import BuildOptions

    count = BuildOptions().calib_count  # quantize calibrates on as many crops as an INT8 build
    calib = parser.add_mutually_exclusive_group()
    calib.add_argument("--calib-images", metavar="DIR", help="folder of person images (one person each)")
    calib.add_argument("--calib-coco", nargs=2, metavar=("ANN", "IMGDIR"), help="COCO keypoint annotations + images")
    parser.add_argument("--calib-count", type=positive_int, metavar="N", help="person crops to use ({})".format(count))


def calibration_sources(args):
    from goatpose_edge.engines.calibration import person_boxes_from_coco, person_boxes_from_folder

    if args.calib_images:
        return person_boxes_from_folder(args.calib_images), args.calib_images
    if args.calib_coco:
        return person_boxes_from_coco(args.calib_coco[0], args.calib_coco[1]), args.calib_coco[0]
    return [], ""


def add_mqtt_tls_arguments(parser, who: str = "this client") -> None:
    """--mqtt-ca, --mqtt-cert, --mqtt-key (mqtts:// only): the options of every command that talks to a broker."""
    parser.add_argument("--mqtt-ca", metavar="CA.pem", help="mqtts://: the CA that signs the broker's certificate")
    parser.add_argument("--mqtt-cert", metavar="CERT.pem", help="mqtts://: {}'s certificate".format(who))
    parser.add_argument("--mqtt-key", metavar="KEY.pem", help="mqtts://: {}'s key".format(who))


def mqtt_broker(args):
    """(broker URL, TLS files) of a broker argument and --mqtt-*; ``UsageError`` for what cannot work."""
    from goatpose_edge.mqtt.client import BrokerError, TlsFiles, parse_broker_url

    try:
        url = parse_broker_url(args.broker, option="broker")
        tls = TlsFiles(args.mqtt_ca, args.mqtt_cert, args.mqtt_key)
        tls.check(url)
    except BrokerError as exc:
        raise UsageError(str(exc)) from None
    return url, tls
