"""``python -m goatpose_edge.synthetic``: write a scene, build the dot model, score a run (thin layers over the
library; one line and exit 1 on bad input).

    python -m goatpose_edge.synthetic scene OUT.avi --truth OUT.truth.jsonl --preset walkers --frames 100 [--jitter 2]
    python -m goatpose_edge.synthetic dotpose OUT.onnx [--input-size 256x192]
    python -m goatpose_edge.synthetic score RUN.jsonl TRUTH.jsonl [--max-distance 0.3]
"""

import argparse
import json
import os
import sys

from goatpose_edge.errors import GoatPoseError

PROG = "python -m goatpose_edge.synthetic"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 1 (as every other bad input)."""

    def error(self, message):
        sys.stderr.write("{}: error: {} (see --help)\n".format(self.prog, message))
        sys.exit(1)


def _size(text: str):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError("expected HxW, e.g. 256x192, got {!r}".format(text))
    return int(parts[0]), int(parts[1])


def cmd_scene(args) -> int:
    from goatpose_edge.synthetic.scene import PRESETS, write_scene

    truth = args.truth or os.path.splitext(args.video)[0] + ".truth.jsonl"
    scene = {"jitter_px": args.jitter, "seed": args.seed, "fps": args.fps}
    if args.dot_radius is not None:
        scene["dot_radius"] = args.dot_radius
    options = PRESETS[args.preset](frames=args.frames, width=args.width, height=args.height, **scene)
    count = write_scene(args.video, truth, options)
    print("wrote {} ({} frames, {} figures, {}x{} at {} fps) and {}".format(
        args.video, count, len(options.figures), options.width, options.height, options.fps, truth))
    return 0


def cmd_dotpose(args) -> int:
    from goatpose_edge.synthetic.dotpose import build_dot_pose_onnx

    build_dot_pose_onnx(args.output, args.input_size)
    print("wrote {} (dot pose model, input {}x{})".format(args.output, *args.input_size))
    return 0


def cmd_score(args) -> int:
    from goatpose_edge.synthetic.metrics import MatchOptions, score_jsonl

    for path in (args.run, args.truth):
        if not os.path.isfile(path):
            raise GoatPoseError("file not found: {}".format(path))
    options = MatchOptions(max_distance=args.max_distance, min_visible=args.min_visible)
    score = score_jsonl(args.run, args.truth, options)
    if args.line:
        print("scored against the scene's truth: recall {:.3f}, precision {:.3f}, keypoint error {} px RMS, {} "
              "identity switch{}, lag {} frames, over {} frames".format(
                  score.recall, score.precision, "{:.2f}".format(score.rms_px) if score.rms_px is not None else "-",
                  score.id_switches, "" if score.id_switches == 1 else "es",
                  "{:.2f}".format(score.lag_frames) if score.lag_frames is not None else "-", score.frames))
    else:
        print(json.dumps(score.to_dict(), indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="synthetic ground truth for the video pipeline")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    scene = sub.add_parser("scene", help="render a preset scene to a video and a ground-truth JSONL")
    scene.add_argument("video", metavar="OUT.avi|OUT.mp4")
    scene.add_argument("--truth", metavar="OUT.truth.jsonl", help="ground truth (default: beside the video)")
    scene.add_argument("--preset", choices=("walkers", "crossing", "single"), default="walkers")
    scene.add_argument("--frames", type=int, default=100)
    scene.add_argument("--width", type=int, default=640)
    scene.add_argument("--height", type=int, default=360)
    scene.add_argument("--fps", type=float, default=25.0)
    scene.add_argument("--jitter", type=float, default=0.0, metavar="PX", help="dot noise sigma, px (truth stays)")
    scene.add_argument("--dot-radius", type=float, metavar="PX", help="dot radius (default: figure height / 36)")
    scene.add_argument("--seed", type=int, default=0)
    dotpose = sub.add_parser("dotpose", help="write the dot pose ONNX model (needs the onnx package)")
    dotpose.add_argument("output", metavar="OUT.onnx")
    dotpose.add_argument("--input-size", type=_size, default=(256, 192), metavar="HxW")
    score = sub.add_parser("score", help="score a `goatpose video --jsonl` run against a scene's truth (JSON out)")
    score.add_argument("run", metavar="RUN.jsonl")
    score.add_argument("truth", metavar="TRUTH.jsonl")
    score.add_argument("--max-distance", type=float, default=0.3, metavar="H",
                       help="largest mean joint distance of a match, in figure heights (0.3)")
    score.add_argument("--min-visible", type=int, default=5, help="visible joints a figure needs to count (5)")
    score.add_argument("--line", action="store_true", help="one line for people instead of JSON")
    return parser


COMMANDS = {"scene": cmd_scene, "dotpose": cmd_dotpose, "score": cmd_score}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: scene, dotpose or score")
    try:
        return COMMANDS[args.command](args)
    except GoatPoseError as exc:
        sys.stderr.write("{}: error: {}\n".format(PROG, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return 1


if __name__ == "__main__":
    sys.exit(main())
