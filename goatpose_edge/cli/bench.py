"""``goatpose bench``: latency per batch size and per-stage video timing, side by side (``bench.suite.run_bench``)."""

import os
import shlex
import sys

from goatpose_edge.cli.common import (VIDEO, UsageError, add_overwrite_argument, add_trust_argument, artefact_input,
                                      detector_input, int_list, name_prefix, non_negative_int, positive_int,
                                      stream_counts, thread_count, word_list, workers_list)
from goatpose_edge.cli.video import add_engine_arguments
from goatpose_edge.fileio import IOPlan

NAME = "bench"
HELP = "latency/throughput per batch, per-stage video timing, side by side"
OUTPUT_FLAGS = ("--out",)


def _listed(values) -> str:
    return ",".join(str(v) for v in values)


def add_arguments(parser) -> None:
    from goatpose_edge.bench.suite import BenchOptions

    defaults = BenchOptions()
    parser.add_argument("artefacts", nargs="+", metavar="ARTEFACT", help=".onnx, .engine or .pth files")
    parser.add_argument("--batch", type=int_list, default=defaults.batches, metavar="1,8",
                        help="batch sizes (default {})".format(_listed(defaults.batches)))
    parser.add_argument("--warmup", type=non_negative_int, default=defaults.warmup, metavar="N",
                        help="untimed calls per batch size ({})".format(defaults.warmup))
    parser.add_argument("--iters", type=positive_int, default=defaults.iters, metavar="N",
                        help="timed calls per batch size ({})".format(defaults.iters))
    parser.add_argument("--threads", type=thread_count, metavar="N",
                        help="CPU threads for onnxruntime/torch (default: all)")
    parser.add_argument("--video", metavar="FILE", help="also run goatpose video's streaming engine on this video, "
                        "per configuration")
    parser.add_argument("--max-frames", type=positive_int, metavar="N",
                        help="frames of --video per stream (default: all)")
    add_engine_arguments(parser, bench=True)
    parser.add_argument("--pipeline", type=word_list("sequential", "pipelined"), default=defaults.pipelines,
                        metavar="sequential,pipelined", help="engine schedules to compare (both)")
    parser.add_argument("--detect", type=word_list("sync", "async"), default=defaults.detect_modes,
                        metavar="sync,async", help="detection modes to compare ({})".format(
                            _listed(defaults.detect_modes)))
    parser.add_argument("--workers", type=workers_list, default=defaults.workers, metavar="auto,1,2",
                        help="pose worker counts to compare (auto: the backend's default)")
    parser.add_argument("--streams", type=stream_counts, default=defaults.streams, metavar="1,3",
                        help="the video replayed K times side by side, per K ({})".format(_listed(defaults.streams)))
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats, metavar="N",
                        help="rounds of every measurement (model only: over all artefacts; --video: over all "
                        "configurations), interleaved; the median is reported with the min..max ({})".format(
                            defaults.repeats))
    parser.add_argument("--person-batching", action="store_true",
                        help="persons/s of the batched pipeline vs a per-crop loop on frames of --video")
    parser.add_argument("--batching-frames", type=positive_int, default=defaults.batching_frames, metavar="N",
                        help="frames for --person-batching")
    parser.add_argument("--profile-ops", action="store_true",
                        help="onnxruntime per-op-type profile of each .onnx (applies to .onnx artefacts only)")
    parser.add_argument("--baseline", metavar="ARTEFACT|MODEL",
                        help="artefact the ratios are taken against (default: the first HRNet per backend)")
    parser.add_argument("--title", help="heading of the Markdown report")
    parser.add_argument("--out", metavar="benchmarks/NAME",
                        help="write NAME.json and NAME.md (+ NAME_ap_fps.png from the goatpose eval records of these "
                        "artefacts in the same folder)")
    add_overwrite_argument(parser)
    add_trust_argument(parser)


def bench_options(args):
    """``BenchOptions`` from the arguments; options that measure nothing together, or nothing on these artefacts
    (--profile-ops without an .onnx), are a usage error."""
    from goatpose_edge.bench.suite import BenchOptionError, BenchOptions, check_artefacts, check_settings

    options = BenchOptions(batches=args.batch, warmup=args.warmup, iters=args.iters, threads=args.threads,
                           video=args.video, max_frames=args.max_frames, detector=args.detector,
                           detect_every=args.detect_every, detect_workers=args.detect_workers, flip=args.flip,
                           pipelines=args.pipeline, detect_modes=args.detect, workers=args.workers,
                           streams=args.streams, repeats=args.repeats, max_persons=args.max_persons,
                           track_min_score=args.track_min_score, person_batching=args.person_batching,
                           batching_frames=args.batching_frames, profile_ops=args.profile_ops,
                           baseline=args.baseline, title=args.title or "", trusted=args.trust_checkpoint)
    try:
        check_settings(options)
        check_artefacts(args.artefacts, options)
    except BenchOptionError as exc:
        raise UsageError(str(exc)) from exc
    return options


def _check_baseline(args) -> None:
    """--baseline names one of the artefacts (path or file name) or a model; anything else would silently give no
    ratios."""
    from goatpose_edge.variants import VARIANTS

    named = [os.path.basename(path) for path in args.artefacts]
    if args.baseline and args.baseline not in args.artefacts + named + list(VARIANTS) and not (
            os.path.exists(args.baseline) and any(os.path.exists(p) and os.path.samefile(args.baseline, p)
                                                  for p in args.artefacts)):
        raise UsageError("--baseline {} is neither one of the artefacts ({}) nor a model name ({})".format(
            args.baseline, ", ".join(named), ", ".join(VARIANTS)))


def io_plan(args) -> IOPlan:
    from goatpose_edge.bench.report import BENCH_KINDS, bench_outputs

    bench_options(args)
    _check_baseline(args)
    plan = IOPlan(overwrite=args.overwrite)
    for path in args.artefacts:
        artefact_input(plan, "ARTEFACT", path)
    detector_input(plan.read("--video", args.video, expect=VIDEO), args.detector)
    if args.out is not None:
        for path, kind in zip(bench_outputs(name_prefix(args.out)), BENCH_KINDS):
            plan.write(path, "--out", kind=kind)
    return plan


def run(args) -> int:
    from goatpose_edge.bench.report import to_markdown, write_bench
    from goatpose_edge.bench.suite import run_bench

    options = bench_options(args)
    command = "goatpose " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    record = run_bench(args.artefacts, options, command, log=lambda line: print(line, file=sys.stderr))
    for warning in record["environment"]["warnings"]:
        print("WARNING: " + warning, file=sys.stderr)
    if record["reliability"]["warnings"]:
        print("WARNING: numbers unreliable: {} (see the report's rule)".format(
            "; ".join(record["reliability"]["warnings"])), file=sys.stderr)
    print(to_markdown(record))
    if args.out is not None:
        for path in write_bench(name_prefix(args.out), record):
            print("wrote " + path)
    return 0
