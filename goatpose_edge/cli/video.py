"""``goatpose video``: pose on video files, cameras, URLs, CSI cameras or GStreamer pipelines (``video.app``).

``add_engine_arguments`` (the streaming engine's options) is shared with ``goatpose bench --video``.
"""

import sys

from goatpose_edge.codec import POST_PROCESS
from goatpose_edge.cli.common import (JSONL_SUFFIXES, UsageError, artefact_input, detector_input, non_negative_float,
                                      positive_float, positive_int, thread_count, worker_count)
from goatpose_edge.cli.publish_options import add_publish_arguments, publish_options, publish_sinks
from goatpose_edge.cli.serve_options import add_serve_arguments, check_serve_usage, serve_sinks
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import IOPlan

NAME = "video"
HELP = "pose on video files, cameras, URLs, Jetson CSI cameras or GStreamer pipelines, one or many at once"
OUTPUT_FLAGS = ("-o", "--jsonl", "--summary-json")


def add_engine_arguments(parser, bench: bool = False) -> None:
    """The streaming engine's options (``video.engine.StreamOptions``; defaults from there), shared by
    ``goatpose video`` and ``goatpose bench --video``."""
    from goatpose_edge.video.engine import StreamOptions

    defaults = StreamOptions(pose="")
    parser.add_argument("--detector", default=defaults.detector, metavar="hog|hog:W|whole|figures|FILE",
                        help="person detector: hog (default; hog:640 is faster and misses small persons), or a YOLO "
                        ".onnx or its engine (goatpose build yolov8n.onnx)")
    parser.add_argument("--detect-every", type=positive_int, default=defaults.detect_every, metavar="N",
                        help="run the detector every N frames, follow keypoints in between ({})".format(
                            defaults.detect_every))
    parser.add_argument("--detect-workers", type=worker_count, default=defaults.detect_workers, metavar="N",
                        help="detector instances side by side ({})".format(defaults.detect_workers))
    parser.add_argument("--max-persons", type=positive_int, metavar="N",
                        help="pose at most the N best-scoring boxes per frame")
    parser.add_argument("--flip", action="store_true", help="flip test (twice the pose work)")
    parser.add_argument("--track-min-score", type=non_negative_float, default=defaults.track_min_score,
                        metavar="S", help="a followed person (--detect async, --detect-every > 1) ends when fewer "
                        "than 4 of its keypoints score S or more ({})".format(defaults.track_min_score))
    if not bench:
        parser.add_argument("--detect", choices=("sync", "async"), default=defaults.detect,
                            help="sync: detect on the frames it poses; async: the detector runs beside the pose "
                            "workers on the newest frame, every frame is posed on its tracks' boxes ({})".format(
                                defaults.detect))
        parser.add_argument("--workers", type=worker_count, metavar="N",
                            help="pose runners side by side, fed with person crops of all frames and streams "
                            "(default: one single-thread onnxruntime session per core on a CPU, 1 for TensorRT, "
                            "CUDA and torch)")
        parser.add_argument("--threads", type=thread_count, metavar="N",
                            help="CPU threads per pose runner (default: the cores split between the workers)")


def add_arguments(parser) -> None:
    from goatpose_edge.video.app import VideoOptions
    from goatpose_edge.video.engine import StreamOptions
    from goatpose_edge.video.smoothing import OneEuroOptions
    from goatpose_edge.video.sources import CsiOptions

    engine = StreamOptions(pose="")
    post_process = engine.post_process or "none"
    encoder = VideoOptions([], engine).encoder
    euro, csi = OneEuroOptions(), CsiOptions()
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="file, camera index (0), rtsp:// or http:// URL, csi://N, or a GStreamer pipeline; "
                        "several run side by side")
    parser.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .engine, .onnx or .pth")
    add_engine_arguments(parser)
    parser.add_argument("--post-process", choices=POST_PROCESS, default=post_process,
                        help="heatmap decoding: HRNet's quarter offset, DARK (sub-pixel) or none ({})".format(
                            post_process))
    parser.add_argument("--smooth", action="store_true", help="One-Euro filter per track and keypoint")
    parser.add_argument("--min-cutoff", type=positive_float, metavar="HZ",
                        help="--smooth: cutoff of a still keypoint, Hz ({})".format(euro.min_cutoff))
    parser.add_argument("--beta", type=non_negative_float, metavar="B",
                        help="--smooth: cutoff rise per pixel/s of speed ({})".format(euro.beta))
    parser.add_argument("--d-cutoff", type=positive_float, metavar="HZ",
                        help="--smooth: cutoff of the speed estimate, Hz ({})".format(euro.d_cutoff))
    parser.add_argument("--raw-keypoints", action="store_true",
                        help="--smooth: JSONL also holds the unsmoothed keypoints (raw_keypoints)")
    parser.add_argument("-o", "--output", metavar="OUT.mp4",
                        help="overlay video (.mp4/.avi/.mkv), input size and fps; with several sources put {stream} "
                        "in the name (its 0-based position)")
    parser.add_argument("--jsonl", metavar="OUT.jsonl", help="one JSON line per frame: persons, track ids, keypoints "
                        "({stream} as for -o)")
    parser.add_argument("--show", action="store_true", help="show the overlay in a window (q or Esc stops)")
    parser.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames (per stream)")
    parser.add_argument("--encoder", choices=("auto", "opencv", "gstreamer"), default=encoder,
                        help="video writer: auto = the Jetson's hardware H.264 encoder when available, else OpenCV")
    parser.add_argument("--csi-width", type=positive_int, default=csi.width,
                        help="CSI capture width ({})".format(csi.width))
    parser.add_argument("--csi-height", type=positive_int, default=csi.height,
                        help="CSI capture height ({})".format(csi.height))
    parser.add_argument("--csi-fps", type=positive_int, default=csi.fps,
                        help="CSI capture frame rate ({})".format(csi.fps))
    parser.add_argument("--csi-flip", type=int, default=csi.flip_method, choices=range(8), metavar="0..7",
                        help="nvvidconv flip-method ({})".format(csi.flip_method))
    parser.add_argument("--stop-grace", type=positive_float, default=VideoOptions([], engine).stop_grace, metavar="S",
                        help="Ctrl-C, SIGTERM or q: seconds the frames in flight get to come out before the run "
                        "ends without them ({:g})".format(VideoOptions([], engine).stop_grace))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--summary-json", metavar="FILE", help="write the run's summary (fps, drops, memory) as JSON")
    add_publish_arguments(parser)
    add_serve_arguments(parser)


def smoothing(args):
    """The One-Euro options from --min-cutoff, --beta and --d-cutoff (defaults for those not given)."""
    from goatpose_edge.video.smoothing import OneEuroOptions

    euro = OneEuroOptions()
    return OneEuroOptions(min_cutoff=args.min_cutoff or euro.min_cutoff,
                          beta=euro.beta if args.beta is None else args.beta,
                          d_cutoff=args.d_cutoff or euro.d_cutoff)


def check_usage(args) -> None:
    """Options that contradict each other or do nothing together: exit 2 (``UsageError``) before any work."""
    from goatpose_edge.video.app import STREAM_PLACEHOLDER, expand_outputs

    for pattern, option in ((args.output, "-o"), (args.jsonl, "--jsonl")):
        try:
            expand_outputs(pattern, len(args.sources), option)
        except GoatPoseError as exc:
            raise UsageError(str(exc)) from None

    tuned = [flag for flag, value in (("--min-cutoff", args.min_cutoff), ("--beta", args.beta),
                                      ("--d-cutoff", args.d_cutoff), ("--raw-keypoints", args.raw_keypoints or None))
             if value is not None]
    if tuned and not args.smooth:
        raise UsageError("{} set{} the smoothing: add --smooth".format(", ".join(tuned), "s" if len(tuned) == 1
                                                                        else ""))
    try:
        engine_options(args).check(len(args.sources))  # the engine's own rules (async, workers, smoothing)
    except GoatPoseError as exc:
        raise UsageError(str(exc)) from None
    publish_options(args)
    check_serve_usage(args)
    if args.summary_json and STREAM_PLACEHOLDER in args.summary_json:
        raise UsageError("--summary-json {}: the summary is one file for the whole run, every stream in it: drop "
                         "{}".format(args.summary_json, STREAM_PLACEHOLDER))


def io_plan(args) -> IOPlan:
    from goatpose_edge.video.app import expand_outputs
    from goatpose_edge.video.outputs import FOURCC
    from goatpose_edge.video.sources import source_file

    check_usage(args)
    plan = IOPlan()
    for source in args.sources:
        plan.read("SOURCE", source_file(source))
    plan = detector_input(artefact_input(plan, "--pose", args.pose), args.detector)
    for path in expand_outputs(args.output, len(args.sources), "-o"):
        plan.write(path, "-o", tuple(sorted(FOURCC)))
    for path in expand_outputs(args.jsonl, len(args.sources), "--jsonl"):
        plan.write(path, "--jsonl", JSONL_SUFFIXES)
    return plan.write(args.summary_json, "--summary-json", (".json",))


def engine_options(args):
    """``StreamOptions`` from ``goatpose video``'s arguments, unchecked (``check_usage`` checks them)."""
    from goatpose_edge.video.engine import StreamOptions
    from goatpose_edge.video.sources import CsiOptions

    return StreamOptions(pose=args.pose, detector=args.detector, detect=args.detect,
                         detect_every=args.detect_every, detect_workers=args.detect_workers, workers=args.workers,
                         threads=args.threads, flip=args.flip, max_persons=args.max_persons,
                         post_process=None if args.post_process == "none" else args.post_process,
                         smooth=args.smooth, smoothing=smoothing(args), track_min_score=args.track_min_score,
                         max_frames=args.max_frames,
                         csi=CsiOptions(args.csi_width, args.csi_height, args.csi_fps, args.csi_flip))


def video_options(args):
    """``VideoOptions`` from ``goatpose video``'s arguments (smoothing flags need --smooth)."""
    from goatpose_edge.video.app import VideoOptions

    check_usage(args)
    engine = engine_options(args)
    return VideoOptions(args.sources, engine, output=args.output, jsonl=args.jsonl, show=args.show,
                        raw_keypoints=args.raw_keypoints, encoder=args.encoder, progress=not args.no_progress,
                        summary_json=args.summary_json, command=" ".join(["goatpose"] + sys.argv[1:]),
                        stop_grace=args.stop_grace)


def run(args) -> int:
    from goatpose_edge.video.app import VideoRunError, run_video

    options = video_options(args)
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    try:
        summary = run_video(options, log=log, sinks=publish_sinks(args, log) + serve_sinks(args))
    except VideoRunError as exc:  # the run got somewhere: its summary is printed (and written) before the error
        for line in exc.summary.lines():
            print(line)
        raise
    for line in summary.lines():
        print(line)
    return 0
