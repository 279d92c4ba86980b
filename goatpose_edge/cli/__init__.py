"""The ``goatpose`` command: thin subcommands over library functions.

Errors a user can act on (``GoatPoseError``) are printed as one line with exit status 1; command-line mistakes
(argparse's, and ``common.UsageError`` for options that contradict each other) exit 2; Ctrl-C exits 130; anything
else is a bug and is reported in one line too (``GOATPOSE_DEBUG=1`` shows the traceback).

Each subcommand is a module of this package with the same few names: ``NAME`` and ``HELP``; ``add_arguments(parser)``
(defaults from the library's option dataclasses); ``io_plan(args)``, what it reads and writes (an ``IOPlan``, checked
against the filesystem before any work); ``OUTPUT_FLAGS``, the options that name what it writes; ``run(args)``, the
work, returning the exit status. What several commands share (argparse types, ``IOPlan`` helpers) is in ``common``.
"""

import argparse
import errno
import os
import sys
import traceback

from goatpose_edge import __version__
from goatpose_edge.cli import (bench, build, dashboard, env, evaluate, export, info, init, listen, lint, platform, pose,
                               quantize, train, verify, video)
from goatpose_edge.cli.common import UsageError, detector_spec
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import clear_protected
from goatpose_edge.signals import Terminated, sigterm_as_interrupt

#: the subcommands, in the order ``goatpose --help`` lists them: the host's, then the device's (``EPILOG``)
COMMANDS = (info, init, export, train, quantize, lint, verify, platform, env, build, pose, video, listen, dashboard,
            bench, evaluate)

#: ``goatpose --help``'s closing part: the commands by where they run, an example each, what each -o / --out writes
EPILOG = """\
host commands (a desktop or server with PyTorch):
  goatpose info goatpose-bl hrnet-w32                         the models' params and GFLOPs beside the paper's
  goatpose init goatpose-bl -o runs/bl.pth                    random weights (-o: .pth or .pt)
  goatpose export goatpose-bl -o export/bl.onnx               ONNX for TensorRT (-o: .onnx)
  goatpose train goatpose-bl --coco-root coco --out runs/bl   COCO training (--out: a run folder)
  goatpose quantize export/bl.onnx --calib-images persons/    INT8 Q/DQ ONNX (-o: .onnx)
  goatpose lint export/bl.onnx                                will TensorRT 8 parse it?
  goatpose verify runs/bl.pth export/bl.onnx                  the same heatmaps?

device commands (Jetson TX2, a CUDA GPU or a CPU; no PyTorch needed):
  goatpose platform                                           GPU, TensorRT, fast FP16/INT8 (JSON)
  goatpose env                                                L4T, power mode, clocks
  goatpose build export/bl.onnx --precision fp16              an engine (-o: .engine, .plan or .trt + .json)
  goatpose pose photo.jpg --pose engines/bl.engine            poses of photos (.engine, .onnx or .pth;
                                                              -o: .jsonl or .ndjson, else stdout)
  goatpose video clip.mp4 --pose engines/bl.engine -o out.mp4 --jsonl out.jsonl
                                                              overlay (-o: .mp4 .m4v .mov .avi .mkv), poses
                                                              (--jsonl: .jsonl or .ndjson), run summary
                                                              (--summary-json: a JSON file)
  goatpose listen mqtt://broker.local --out received/         poses published by devices (--out: a folder)
  goatpose dashboard mqtt://broker.local --serve 8080         every device's poses live at http://127.0.0.1:8080/
  goatpose bench export/bl.onnx engines/bl.engine --out benchmarks/mine
                                                              speed (--out NAME: NAME.json, NAME.md)
  goatpose eval engines/bl.engine --coco-root coco --out benchmarks/bl-eval
                                                              COCO AP (--out NAME: NAME.json, NAME_results.json)

goatpose COMMAND --help says more about each.
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``goatpose build: error: ... (see goatpose build --help)``."""

    def error(self, message):
        self.exit(2, "{}: error: {} (see {} --help)\n".format(self.prog, message, self.prog))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="goatpose", description="Pose models from PyTorch to ONNX to TensorRT (Jetson TX2, "
                           "CUDA GPUs, CPUs): host commands make the artefacts, device commands run them.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="goatpose-edge " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command_parser = sub.add_parser(command.NAME, help=command.HELP)
        command.add_arguments(command_parser)
        for action in command_parser._actions:  # one parser for every --detector: a bad name is a usage error
            if action.dest == "detector" and action.type is None:
                action.type = detector_spec
        command_parser.set_defaults(func=command.run, io=command.io_plan)
        if command.OUTPUT_FLAGS:
            command_parser.set_defaults(output_flags=command.OUTPUT_FLAGS)
    return parser


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("GOATPOSE_DEBUG"):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    print("goatpose: internal error: {}: {} (set GOATPOSE_DEBUG=1 for the traceback and please report it)".format(
        type(exc).__name__, exc), file=sys.stderr)
    return 3


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with sigterm_as_interrupt():
        try:
            args.io(args).check()  # outputs checked against inputs and the filesystem before any work
            return args.func(args)
        except UsageError as exc:  # as argparse says its own: the command, the mistake, where to look
            prog = "goatpose " + args.command
            print("{}: error: {} (see {} --help)".format(prog, exc, prog), file=sys.stderr)
            return 2
        except GoatPoseError as exc:
            print("goatpose: error: {}".format(exc), file=sys.stderr)
            return 1
        except BrokenPipeError:  # `goatpose pose ... | head`: the reader left, nothing to say
            sys.stderr.close()
            return 141
        except MemoryError:
            print("goatpose: error: out of memory (a batch or input too large for this machine?)", file=sys.stderr)
            return 1
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk: nothing half-written stays (atomic_output)
                print("goatpose: error: no space left on device writing {}".format(exc.filename or "an output"),
                      file=sys.stderr)
                return 1
            return _internal_error(exc)
        except Terminated:
            print("goatpose: terminated (SIGTERM); nothing half-written was left", file=sys.stderr)
            return 143
        except KeyboardInterrupt:
            print("goatpose: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # a bug: still one line unless asked for more
            return _internal_error(exc)
        finally:
            clear_protected()
