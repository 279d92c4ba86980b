"""The ``goatpose`` command: thin subcommands over library functions.

Errors a user can act on (``GoatPoseError``) are printed as one line with exit status 1; Ctrl-C exits 130; anything
else is a bug and is reported in one line too (``GOATPOSE_DEBUG=1`` shows the traceback).
"""

import argparse
import errno
import json
import os
import shlex
import sys
import traceback
from typing import List, Optional

from goatpose_edge import __version__
from goatpose_edge.errors import DependencyError, GoatPoseError
from goatpose_edge.fileio import IOPlan, clear_protected
from goatpose_edge.signals import Terminated, sigterm_as_interrupt

# What each command writes, by ending (``IOPlan.write``); sidecars and caches are derived from these.
ONNX_SUFFIXES = (".onnx",)
CHECKPOINT_SUFFIXES = (".pth", ".pt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def _require_torch(step: str):
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyError("{} needs PyTorch (host side): pip install 'goatpose-edge[host]'".format(step)) from exc


def _artefact_input(plan: IOPlan, option: str, path) -> IOPlan:
    """An artefact the command reads and, for a TensorRT engine, the sidecar JSON beside it."""
    from goatpose_edge.artefact.sidecar import ENGINE_SUFFIXES, sidecar_path

    plan.read(option, path)
    if path and path.lower().endswith(ENGINE_SUFFIXES):
        plan.read("the sidecar of " + option, sidecar_path(path))
    return plan


def _image_inputs(plan: IOPlan, option: str, specs) -> IOPlan:
    """The photos of ``--image IMG[@x,y,w,h]`` (split as ``export.parity.parse_image_arg`` splits them)."""
    from goatpose_edge.export.parity import parse_image_arg

    return plan.read(option, *(parse_image_arg(spec)[0] for spec in specs or ()))


def _detector_input(plan: IOPlan, spec) -> IOPlan:
    return _artefact_input(plan, "--detector", spec) if spec and os.path.exists(spec) else plan


def _calibration_inputs(plan: IOPlan, args) -> IOPlan:
    if getattr(args, "calib_coco", None):
        plan.read("--calib-coco", *args.calib_coco)
    return plan.read("--calib-images", getattr(args, "calib_images", None))


def _name_prefix(out: str, option: str = "--out") -> str:
    """``--out NAME`` of bench/eval: a name the files' endings are added to, never a folder."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out) or not os.path.basename(out):
        raise GoatPoseError("{} {} is a folder; give a name in it, e.g. {}".format(
            option, out, os.path.join(out.rstrip("/" + os.sep) or ".", "bench")))
    return out


def _foreign_record(plan: IOPlan, path: str, own_format: str) -> IOPlan:
    """An existing ``path`` that is not a record of ``own_format`` (an eval record where bench writes, say) is
    someone's result: it counts as an input, so it is never replaced."""
    if os.path.isfile(path):
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            record = None
        if not (isinstance(record, dict) and record.get("format") == own_format):
            plan.read("(an existing file, not a {} record)".format(own_format), path)
    return plan


def io_none(args) -> IOPlan:
    """A command that writes no file."""
    return IOPlan()


def cmd_info(args) -> int:
    from goatpose_edge.variants import VARIANTS, get_variant

    if not args.models and not args.all:
        raise GoatPoseError("name a model or pass --all; known models: {}".format(", ".join(VARIANTS)))
    if args.models and args.all:
        raise GoatPoseError("give model names or --all, not both")
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


def cmd_init(args) -> int:
    from goatpose_edge.variants import get_variant

    get_variant(args.model)
    _require_torch("goatpose init")
    import torch

    from goatpose_edge.models import build_model
    from goatpose_edge.models.checkpoint import save_checkpoint

    torch.manual_seed(args.seed)
    save_checkpoint(build_model(args.model), args.output)
    print("wrote {} ({} with RANDOM weights, seed {}: for speed tests and as a training start)".format(
        args.output, args.model, args.seed))
    return 0


def io_init(args) -> IOPlan:  # random weights never replace a file, trained or not
    return IOPlan().write(args.output, "-o", CHECKPOINT_SUFFIXES, exist_ok=False)


def cmd_export(args) -> int:
    from goatpose_edge.export import export_onnx
    from goatpose_edge.variants import get_variant

    get_variant(args.model)  # unknown names fail before torch loads
    if not args.weights:
        print("WARNING: no --weights given: exporting {} with RANDOM weights (fine for speed, useless for "
              "poses)".format(args.model), file=sys.stderr)
    if not args.image:
        print("note: no --image given: parity is checked on seeded random input only; pass a person photo "
              "(IMG or IMG@x,y,w,h) to check it on a real crop too", file=sys.stderr)
    result = export_onnx(args.model, weights=args.weights, output=args.output, opset=args.opset, batch=args.batch,
                         fliptest=args.fliptest, target=args.target, images=args.image,
                         trusted=args.trust_checkpoint, log=print)
    dirt = {k: result.census[k] for k in ("bn_after_conv", "nam_weight_ops", "training_ops", "identity",
                                          "noop_slice", "duplicate_relu")}
    ops = ", ".join("{} {}".format(k[3:], v) for k, v in result.census.items() if k.startswith("op:"))
    print("graph: {} nodes ({}); left after clean-up: {}".format(result.census["nodes"], ops, dirt))
    for warning in result.lint.warnings:
        print("lint warning: " + warning)
    print("wrote {} ({} batch, opset {}, {}-compatible{})".format(
        result.path, result.batch or "dynamic", result.opset, args.target,
        ", RANDOM weights" if result.random_weights else ""))
    return 0


def io_export(args) -> IOPlan:
    from goatpose_edge.export import default_output_path
    from goatpose_edge.variants import get_variant

    plan = _image_inputs(IOPlan().read("--weights", args.weights), "--image", args.image)
    if args.output:
        return plan.write(args.output, "-o", ONNX_SUFFIXES)
    default = default_output_path(get_variant(args.model).contract, args.batch, args.fliptest)
    return plan.write(default, "the default output", ONNX_SUFFIXES, create_parent=True)


def cmd_verify(args) -> int:
    from goatpose_edge.export.parity import check, verify_runners
    from goatpose_edge.runtime import load_runner

    def options(path):
        return {"model_name": args.model, "trusted": args.trust_checkpoint} if path.endswith((".pth", ".pt")) else {}

    with load_runner(args.reference, **options(args.reference)) as reference, \
            load_runner(args.test, **options(args.test)) as test:
        reports = verify_runners(reference, test, args.image, args.tolerance)
    for report in reports:
        print("{} vs {}: {}".format(reference.backend, test.backend, report.line()))
    check(reports, "{} vs {}".format(args.reference, args.test))
    return 0


def cmd_lint(args) -> int:
    from goatpose_edge.export.lint import lint, load_model

    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise DependencyError("goatpose lint needs onnx: pip install onnx") from exc
    report = lint(load_model(args.onnx), args.target)  # one clear line for a missing, empty or corrupt file
    for warning in report.warnings:
        print("warning: " + warning)
    report.raise_for_violations(args.onnx)
    print("{}: {}-compatible".format(args.onnx, args.target))
    return 0


def cmd_pose(args) -> int:
    from goatpose_edge.detection import make_detector
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.imagefile import read_image
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import load_runner

    frames = [(path, read_image(path)) for path in args.images]  # every image first: a bad one fails before a model
    options = {"model_name": args.model} if args.pose.endswith((".pth", ".pt")) else {}
    post_process = None if args.post_process == "none" else args.post_process
    lines = []
    with make_detector(args.detector) as detector, load_runner(args.pose, **options) as runner:
        estimator = TopDownPoseEstimator(detector, runner, flip=args.flip, post_process=post_process)
        for path, frame in frames:
            persons = estimator(frame)
            lines.append(json.dumps({"image": path, "persons": [p.to_dict() for p in persons]}))
    if args.output:
        with atomic_output(args.output) as tmp_path:
            with open(tmp_path, "w") as f:
                f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
    return 0


def io_pose(args) -> IOPlan:
    plan = _detector_input(_artefact_input(IOPlan().read("IMAGE", *args.images), "--pose", args.pose), args.detector)
    return plan.write(args.output, "-o", JSONL_SUFFIXES)


def _calibration_sources(args):
    from goatpose_edge.engines.calibration import person_boxes_from_coco, person_boxes_from_folder

    if args.calib_images:
        return person_boxes_from_folder(args.calib_images), args.calib_images
    if args.calib_coco:
        return person_boxes_from_coco(args.calib_coco[0], args.calib_coco[1]), args.calib_coco[0]
    return [], ""


def io_build(args) -> IOPlan:
    """The engine, its sidecar, (INT8) the calibration cache and its record, and the timing cache
    (``builder.build_outputs``); without -o the default name, derived from the platform, is checked by
    ``build_engine`` against the same inputs before the build."""
    from goatpose_edge.engines.builder import TIMING_CACHE_SUFFIXES, build_outputs

    plan = _image_inputs(_calibration_inputs(IOPlan().read("MODEL.onnx", args.onnx), args), "--image", args.image)
    if args.output:
        plan.outputs.extend(build_outputs(args.output, args.precision == "int8", args.timing_cache, option="-o",
                                          create_parent=False))
        return plan
    return plan.write(args.timing_cache, "--timing-cache", TIMING_CACHE_SUFFIXES)


def cmd_build(args) -> int:
    if args.batch and any(v is not None for v in (args.min_batch, args.opt_batch, args.max_batch)):
        raise GoatPoseError("--batch N fixes the batch: give it or --min/--opt/--max-batch, not both")
    from goatpose_edge.engines.builder import BatchProfile, BuildOptions, build_engine, trtexec_command
    from goatpose_edge.artefact.sidecar import sidecar_path
    from goatpose_edge.engines.verify import verify_engine

    if args.batch:
        profile = BatchProfile(args.batch, args.batch, args.batch)
    else:  # default 1..8, tuned for 4 persons: a top-down pipeline batches the persons of a frame
        maximum = args.max_batch or max(8, args.opt_batch or 1, args.min_batch or 1)
        minimum = args.min_batch or 1
        profile = BatchProfile(minimum, args.opt_batch or max(minimum, min(4, maximum)), maximum)
    sources, label = _calibration_sources(args)
    options = BuildOptions(precision=args.precision, profile=profile, workspace_mib=args.workspace,
                           timing_cache=args.timing_cache, dla_core=args.dla_core, force=args.force,
                           calib_sources=sources, calib_count=args.calib_count, calib_label=label,
                           verbose=args.verbose)
    result = build_engine(args.onnx, args.output, options, log=print)
    sidecar = result.sidecar
    print("wrote {} + {} ({} requested, {} built, TensorRT {}, {}, batch {}..{}, {:.0f} s)".format(
        result.engine_path, sidecar_path(result.engine_path), sidecar.requested_precision,
        sidecar.effective_precision, sidecar.tensorrt_version, sidecar.gpu_name, sidecar.batch_profile["min"],
        sidecar.batch_profile["max"], sidecar.build_seconds))
    if args.print_trtexec:
        from goatpose_edge.runtime.trt_api import import_tensorrt

        named = not hasattr(import_tensorrt().ICudaEngine, "get_binding_name")
        built = BatchProfile(**sidecar.batch_profile)
        print(trtexec_command(args.onnx, result.engine_path, sidecar.builder_flags, built,
                              sidecar.model_contract.input_size, args.workspace, named, args.timing_cache,
                              args.dla_core, (sidecar.calibration or {}).get("cache")))
    if args.verify:
        report = verify_engine(args.onnx, result.engine_path, sources[:16], args.image)
        print(report.line())
        if not report.ok:  # an engine that failed its check is not left where a runner would pick it up
            for path in (result.engine_path, sidecar_path(result.engine_path)):
                os.remove(path)
            raise GoatPoseError("{}; {} and its sidecar were removed (the calibration cache is kept)".format(
                report.line(), result.engine_path))
    return 0


def cmd_platform(args) -> int:
    from goatpose_edge.engines.builder import platform_caps

    caps = platform_caps()
    print(json.dumps({"gpu": caps.gpu_name, "compute_capability": list(caps.compute_capability),
                      "tensorrt": caps.tensorrt_version, "fast_fp16": caps.fast_fp16, "fast_int8": caps.fast_int8,
                      "dla_cores": caps.dla_cores, "precision_flags": caps.precision_flags}))
    if args.require:
        missing = [p for p in args.require if not getattr(caps, "fast_" + p)]
        if missing:
            raise GoatPoseError("{} has no fast {}".format(caps.describe(), "/".join(m.upper() for m in missing)))
    return 0


def io_train(args) -> IOPlan:
    """Checkpoints and log in --out; resuming from --out's own last.pth is the run continuing, not a collision."""
    from goatpose_edge.fileio import same_file
    from goatpose_edge.train.options import options_from_args

    options = options_from_args(args).resolve()
    plan = IOPlan().read("--train-ann", options.train_ann).read("--val-ann", options.val_ann)
    plan.read("--init-from", options.init_from)
    last = os.path.join(options.out, "last.pth")
    if options.resume and not same_file(options.resume, last):
        plan.read("--resume", options.resume)
    plan.write(options.out, "--out", folder=True, create_parent=not args.out)  # the default runs/MODEL is made
    for name in ("last.pth", "best.pth", "log.jsonl"):
        plan.write(os.path.join(options.out, name), "--out", create_parent=True)
    return plan


def cmd_train(args) -> int:
    _require_torch("goatpose train")
    from goatpose_edge.train.options import options_from_args
    from goatpose_edge.train.trainer import train

    result = train(options_from_args(args))
    print("trained {} epoch(s); best AP {}; checkpoints in {}".format(
        result["epochs_run"], "{:.4f}".format(result["best_ap"]) if result["best_ap"] >= 0 else "not validated",
        result["out"]))
    return 0


def cmd_env(args) -> int:
    from goatpose_edge.bench.env import describe, environment, tensorrt_record

    record = environment(gpu=False)
    trt = tensorrt_record()
    if args.json:
        record["tensorrt"] = trt
        print(json.dumps(record, indent=2))
    else:
        print("\n".join(describe(record, trt)))
    return 0


def _qdq_output(args) -> str:
    return args.output or os.path.splitext(args.onnx)[0] + "_qdq.onnx"


def io_quantize(args) -> IOPlan:
    plan = _calibration_inputs(IOPlan().read("MODEL.onnx", args.onnx), args)
    return plan.write(_qdq_output(args), "-o" if args.output else "the default output", ONNX_SUFFIXES)


def cmd_quantize(args) -> int:
    from goatpose_edge.engines.calibration import calibration_crops
    from goatpose_edge.engines.qdq import qdq_accuracy, quantize_qdq
    from goatpose_edge.fileio import atomic_output
    from goatpose_edge.artefact.onnx_meta import read_contract

    sources, _ = _calibration_sources(args)
    if not sources:
        raise GoatPoseError("quantization needs calibration images: --calib-images DIR or --calib-coco ANN IMGDIR")
    crops = calibration_crops(sources, read_contract(args.onnx), args.calib_count)
    output = _qdq_output(args)
    print("calibrating on {} person crops ...".format(len(crops)))
    with atomic_output(output) as tmp_path:  # in place only once its heatmaps passed the check
        quantize_qdq(args.onnx, crops, tmp_path)
        report = qdq_accuracy(args.onnx, tmp_path, crops)
    print(report.line())
    print("wrote {} (build it with: goatpose build {} --precision int8)".format(output, output))
    return 0


def _int_list(text: str):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, e.g. 1,4,8, got {!r}".format(text))
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive sizes, e.g. 1,4,8, got {!r}".format(text))
    return values


def _word_list(*choices):
    def parse(text: str) -> List[str]:
        words = [w.strip() for w in text.split(",") if w.strip()]
        bad = [w for w in words if w not in choices]
        if not words or bad:
            raise argparse.ArgumentTypeError("expected a comma-separated list of {}, got {!r}".format(
                ", ".join(choices), text))
        return words

    parse.__name__ = "list"
    return parse


def _workers_list(text: str) -> List[Optional[int]]:
    values = []
    for word in (w.strip() for w in text.split(",") if w.strip()):
        values.append(None if word == "auto" else _worker_count(word))
    if not values:
        raise argparse.ArgumentTypeError("expected auto or worker counts, e.g. auto,1,2, got {!r}".format(text))
    return values


def io_bench(args) -> IOPlan:
    from goatpose_edge.bench.report import BENCH_FORMAT, bench_outputs

    plan = IOPlan()
    for path in args.artefacts:
        _artefact_input(plan, "ARTEFACT", path)
    if args.baseline and os.path.exists(args.baseline):
        _artefact_input(plan, "--baseline", args.baseline)
    _detector_input(plan.read("--video", args.video), args.detector)
    if args.out is not None:
        paths = bench_outputs(_name_prefix(args.out))
        for path in paths:
            plan.write(path, "--out")
        _foreign_record(plan, paths[0], BENCH_FORMAT)
    return plan


def _counted_int(minimum: int, what: str):
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive number, got {!r}".format(text))
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("expected a positive finite number, got {}".format(text))
    return value


_positive_int = _counted_int(1, "a positive integer")


def _seed(text: str) -> int:
    value = _non_negative_int(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError("expected a seed below 2**32, got {}".format(value))
    return value


def _thread_count(text: str) -> int:
    """--threads, --workers: 1 .. 4x this machine's CPUs (a typo like 100000 would start that many threads)."""
    value = _positive_int(text)
    cpus = os.cpu_count() or 1
    if value > 4 * cpus:
        raise argparse.ArgumentTypeError("expected at most {} (4 x the {} CPUs here), got {}".format(
            4 * cpus, cpus, value))
    return value
_non_negative_int = _counted_int(0, "an integer >= 0")


def cmd_bench(args) -> int:
    from goatpose_edge.bench.report import to_markdown, write_bench
    from goatpose_edge.bench.suite import BenchOptions, run_bench

    options = BenchOptions(batches=args.batch, warmup=args.warmup, iters=args.iters, threads=args.threads,
                           video=args.video, max_frames=args.max_frames, detector=args.detector,
                           detect_every=args.detect_every, detect_workers=args.detect_workers, flip=args.flip,
                           pipelines=args.pipeline, detect_modes=args.detect, workers=args.workers,
                           streams=args.streams, repeats=args.repeats, max_persons=args.max_persons,
                           track_min_score=args.track_min_score, person_batching=args.person_batching,
                           batching_frames=args.batching_frames, profile_ops=args.profile_ops,
                           baseline=args.baseline, title=args.title or "")
    command = "goatpose " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    record = run_bench(args.artefacts, options, command, log=lambda line: print(line, file=sys.stderr))
    for warning in record["environment"]["warnings"]:
        print("WARNING: " + warning, file=sys.stderr)
    print(to_markdown(record))
    if args.out is not None:
        for path in write_bench(_name_prefix(args.out), record):
            print("wrote " + path)
    return 0


def io_eval(args) -> IOPlan:
    ann = args.ann or os.path.join(args.coco_root, "annotations", "person_keypoints_val2017.json")
    plan = _artefact_input(IOPlan(), "ARTEFACT", args.artefact).read("--ann", ann).read("--det-json", args.det_json)
    if args.out is not None:
        from goatpose_edge.bench.report import EVAL_FORMAT

        prefix = _name_prefix(args.out)
        plan.write(prefix + ".json", "--out", (".json",)).write(prefix + "_results.json", "--out", (".json",))
        _foreign_record(plan, prefix + ".json", EVAL_FORMAT)
    return plan


def cmd_eval(args) -> int:
    from goatpose_edge.bench.coco_eval import evaluate_runner, prepare_eval, write_results
    from goatpose_edge.bench.env import environment
    from goatpose_edge.bench.report import EVAL_FORMAT, utc_now, write_text
    from goatpose_edge.runtime import open_runner

    post_process = None if args.post_process == "none" else args.post_process
    inputs = prepare_eval(args.coco_root, args.ann, args.det_json, args.limit)  # bad annotations fail before the model
    with open_runner(args.artefact, args.threads) as runner:
        if runner.contract is None:
            raise GoatPoseError("{} is not a pose model (no model contract)".format(args.artefact))
        result = evaluate_runner(runner, args.coco_root, args.ann, args.det_json, flip=args.flip, limit=args.limit,
                                 post_process=post_process, progress=not args.no_progress, inputs=inputs)
        artefact = os.path.basename(runner.path)
        backend, model = runner.backend, runner.contract.name
    print("{} ({} {}): {} on {} images, {} boxes -> {} persons, {:.1f} s".format(
        artefact, backend, model, result.line(), result.images, result.boxes, result.persons, result.seconds))
    if args.out is not None:
        record = {"format": EVAL_FORMAT, "created": utc_now(), "artefact": artefact, "backend": backend,
                  "model": model, "command": "goatpose " + " ".join(shlex.quote(a) for a in sys.argv[1:]), "environment": environment(
                      args.threads)}
        record.update(result.to_dict())
        prefix = _name_prefix(args.out)
        write_results(prefix + "_results.json", result.results)
        write_text(prefix + ".json", json.dumps(record, indent=2) + "\n")
        print("wrote {0}.json and {0}_results.json".format(prefix))
    return 0


#: --workers and --detect-workers: bounded like --threads (each worker is a thread, or several)
_worker_count = _thread_count


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number >= 0, got {!r}".format(text))
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected a finite number >= 0, got {}".format(text))
    return value


def add_engine_arguments(parser, bench: bool = False) -> None:
    """The streaming engine's options (``video.engine.StreamOptions``; defaults from there), shared by
    ``goatpose video`` and ``goatpose bench --video``."""
    from goatpose_edge.video.engine import StreamOptions

    defaults = StreamOptions(pose="")
    parser.add_argument("--detector", default=defaults.detector, metavar="hog|hog:W|whole|figures|FILE.onnx",
                        help="person detector (default hog; hog:640 is faster and misses small persons)")
    parser.add_argument("--detect-every", type=_positive_int, default=defaults.detect_every, metavar="N",
                        help="run the detector every N frames, follow keypoints in between ({})".format(
                            defaults.detect_every))
    parser.add_argument("--detect-workers", type=_worker_count, default=defaults.detect_workers, metavar="N",
                        help="detector instances side by side ({})".format(defaults.detect_workers))
    parser.add_argument("--max-persons", type=_positive_int, metavar="N",
                        help="pose at most the N best-scoring boxes per frame")
    parser.add_argument("--flip", action="store_true", help="flip test (twice the pose work)")
    parser.add_argument("--track-min-score", type=_non_negative_float, default=defaults.track_min_score,
                        metavar="S", help="a followed person (--detect async, --detect-every > 1) ends when fewer than 4 "
                        "of its keypoints score S or more ({})".format(defaults.track_min_score))
    if not bench:
        parser.add_argument("--detect", choices=("sync", "async"), default=defaults.detect,
                            help="sync: detect on the frames it poses; async: the detector runs beside the pose "
                            "workers on the newest frame, every frame is posed on its tracks' boxes ({})".format(
                                defaults.detect))
        parser.add_argument("--workers", type=_worker_count, metavar="N",
                            help="pose runners side by side, fed with person crops of all frames and streams "
                            "(default: one single-thread onnxruntime session per core on a CPU, 1 for TensorRT, "
                            "CUDA and torch)")
        parser.add_argument("--threads", type=_thread_count, metavar="N",
                            help="CPU threads per pose runner (default: the cores split between the workers)")


def add_video_arguments(video) -> None:
    from goatpose_edge.video.smoothing import OneEuroOptions

    euro = OneEuroOptions()
    video.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="file, camera index (0), rtsp:// or http:// URL, csi://N, or a GStreamer pipeline; "
                       "several run side by side")
    video.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .engine, .onnx or .pth")
    add_engine_arguments(video)
    video.add_argument("--post-process", choices=("quarter", "dark", "none"), default="quarter",
                       help="heatmap decoding: HRNet's quarter offset, DARK (sub-pixel) or none (quarter)")
    video.add_argument("--smooth", action="store_true", help="One-Euro filter per track and keypoint")
    video.add_argument("--min-cutoff", type=_positive_float, metavar="HZ",
                       help="--smooth: cutoff of a still keypoint, Hz ({})".format(euro.min_cutoff))
    video.add_argument("--beta", type=_non_negative_float, metavar="B",
                       help="--smooth: cutoff rise per pixel/s of speed ({})".format(euro.beta))
    video.add_argument("--d-cutoff", type=_positive_float, metavar="HZ",
                       help="--smooth: cutoff of the speed estimate, Hz ({})".format(euro.d_cutoff))
    video.add_argument("--raw-keypoints", action="store_true",
                       help="--smooth: JSONL also holds the unsmoothed keypoints (raw_keypoints)")
    video.add_argument("-o", "--output", metavar="OUT.mp4",
                       help="overlay video (.mp4/.avi/.mkv), input size and fps; with several sources put {stream} "
                       "in the name (its 0-based position)")
    video.add_argument("--jsonl", metavar="OUT.jsonl", help="one JSON line per frame: persons, track ids, keypoints "
                       "({stream} as for -o)")
    video.add_argument("--show", action="store_true", help="show the overlay in a window (q or Esc stops)")
    video.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames (per stream)")
    video.add_argument("--encoder", choices=("auto", "opencv", "gstreamer"), default="auto",
                       help="video writer: auto = the Jetson's hardware H.264 encoder when available, else OpenCV")
    video.add_argument("--csi-width", type=_positive_int, default=1280, help="CSI capture width (1280)")
    video.add_argument("--csi-height", type=_positive_int, default=720, help="CSI capture height (720)")
    video.add_argument("--csi-fps", type=_positive_int, default=30, help="CSI capture frame rate (30)")
    video.add_argument("--csi-flip", type=int, default=0, choices=range(8), metavar="0..7", help="nvvidconv flip-method (0)")
    video.add_argument("--no-progress", action="store_true", help="no progress bar")
    video.add_argument("--summary-json", metavar="FILE", help="write the run's summary (fps, drops, memory) as JSON")


def io_video(args) -> IOPlan:
    from goatpose_edge.video.app import expand_outputs
    from goatpose_edge.video.outputs import FOURCC

    plan = IOPlan()
    for source in args.sources:
        plan.read("SOURCE", source if os.path.isfile(source) else None)
    plan = _detector_input(_artefact_input(plan, "--pose", args.pose), args.detector)
    for path in expand_outputs(args.output, len(args.sources), "-o"):
        plan.write(path, "-o", tuple(sorted(FOURCC)))
    for path in expand_outputs(args.jsonl, len(args.sources), "--jsonl"):
        plan.write(path, "--jsonl", JSONL_SUFFIXES)
    return plan.write(args.summary_json, "--summary-json", (".json",))


def video_options(args):
    """``VideoOptions`` from ``goatpose video``'s arguments (smoothing flags need --smooth)."""
    from goatpose_edge.video.app import VideoOptions
    from goatpose_edge.video.engine import StreamOptions
    from goatpose_edge.video.smoothing import OneEuroOptions
    from goatpose_edge.video.sources import CsiOptions

    tuned = [flag for flag, value in (("--min-cutoff", args.min_cutoff), ("--beta", args.beta),
                                      ("--d-cutoff", args.d_cutoff), ("--raw-keypoints", args.raw_keypoints or None))
             if value is not None]
    if tuned and not args.smooth:
        raise GoatPoseError("{} set{} the smoothing: add --smooth".format(", ".join(tuned),
                                                                          "s" if len(tuned) == 1 else ""))
    euro = OneEuroOptions()
    smoothing = OneEuroOptions(min_cutoff=args.min_cutoff or euro.min_cutoff,
                               beta=euro.beta if args.beta is None else args.beta,
                               d_cutoff=args.d_cutoff or euro.d_cutoff)
    engine = StreamOptions(pose=args.pose, detector=args.detector, detect=args.detect,
                           detect_every=args.detect_every, detect_workers=args.detect_workers, workers=args.workers,
                           threads=args.threads, flip=args.flip, max_persons=args.max_persons,
                           post_process=None if args.post_process == "none" else args.post_process,
                           smooth=args.smooth, smoothing=smoothing, track_min_score=args.track_min_score,
                           max_frames=args.max_frames,
                           csi=CsiOptions(args.csi_width, args.csi_height, args.csi_fps, args.csi_flip))
    return VideoOptions(args.sources, engine, output=args.output, jsonl=args.jsonl, show=args.show,
                        raw_keypoints=args.raw_keypoints, encoder=args.encoder, progress=not args.no_progress)


def cmd_video(args) -> int:
    from goatpose_edge.video.app import VideoRunError, run_video

    options = video_options(args)

    def write_summary(summary):
        if args.summary_json:
            from goatpose_edge.bench.report import write_text

            write_text(args.summary_json, json.dumps(summary.to_dict(), indent=2) + "\n")

    try:
        summary = run_video(options, log=lambda line: print(line, file=sys.stderr))
    except VideoRunError as exc:  # the run got somewhere: its summary is worth keeping
        for line in exc.summary.lines():
            print(line)
        write_summary(exc.summary)
        raise
    for line in summary.lines():
        print(line)
    if not (args.output or args.jsonl or args.show):
        print("note: no -o, --jsonl or --show: poses were computed and counted only", file=sys.stderr)
    write_summary(summary)
    return 0


def _add_calibration_options(parser):
    calib = parser.add_mutually_exclusive_group()
    calib.add_argument("--calib-images", metavar="DIR", help="folder of person images (one person each)")
    calib.add_argument("--calib-coco", nargs=2, metavar=("ANN", "IMGDIR"), help="COCO keypoint annotations + images")
    parser.add_argument("--calib-count", type=_positive_int, default=256, metavar="N", help="person crops to use (256)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="goatpose", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version="goatpose-edge " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="params, conv MACs and shapes of a model, beside the paper's figures")
    info.add_argument("models", nargs="*", metavar="MODEL", help="model name(s), e.g. goatpose-bl hrnet-w32")
    info.add_argument("--all", action="store_true", help="every model in the table")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=cmd_info, io=io_none)

    init = sub.add_parser("init", help="write a randomly initialised checkpoint (.pth) in the toolkit's format")
    init.add_argument("model", metavar="MODEL")
    init.add_argument("-o", "--output", required=True, metavar="FILE.pth")
    init.add_argument("--seed", type=_seed, default=0)
    init.set_defaults(func=cmd_init, io=io_init, output_flags=("-o",))

    export = sub.add_parser("export", help="export a model to a TensorRT-ready ONNX file, checked against PyTorch")
    export.add_argument("model", metavar="MODEL", help="model name, e.g. goatpose-bl (see goatpose info --all)")
    export.add_argument("--weights", metavar="W.pth", help="checkpoint to load (default: random weights)")
    export.add_argument("-o", "--output", metavar="FILE.onnx", help="default: export/<model>_<H>x<W>[_b<N>][_flip].onnx")
    export.add_argument("--opset", type=int, default=13, help="ONNX opset, 11..13 for trt8 (default 13)")
    batch = export.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=_positive_int, metavar="N", help="static batch size")
    batch.add_argument("--dynamic-batch", action="store_true", help="dynamic batch axis (the default)")
    export.add_argument("--fliptest", action="store_true", help="merge the horizontally flipped input in the graph")
    export.add_argument("--target", choices=("trt8", "trt10"), default="trt8",
                        help="TensorRT generation to lint for (default trt8: the TX2's 8.0/8.2)")
    export.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                        help="person photo (and box) for the parity check; repeatable")
    export.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that pickle Python objects (unpickling can run code)")
    export.set_defaults(func=cmd_export, io=io_export, output_flags=("-o",))

    verify = sub.add_parser("verify", help="compare the heatmaps of two artefacts (.pth, .onnx)")
    verify.add_argument("reference", metavar="A", help="reference artefact")
    verify.add_argument("test", metavar="B", help="artefact under test")
    verify.add_argument("--model", help="model name for a .pth that does not record it")
    verify.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                        help="person photo (and box) to compare on, besides seeded random input; repeatable")
    verify.add_argument("--tolerance", type=_positive_float, default=1e-4, help="max abs error / max|A| (default 1e-4)")
    verify.add_argument("--trust-checkpoint", action="store_true",
                        help="allow checkpoints that pickle Python objects (unpickling can run code)")
    verify.set_defaults(func=cmd_verify, io=io_none)

    pose = sub.add_parser("pose", help="poses of the persons in images, as JSON lines")
    pose.add_argument("images", nargs="+", metavar="IMAGE")
    pose.add_argument("--pose", required=True, metavar="ARTEFACT", help="pose model: .onnx or .pth")
    pose.add_argument("--model", help="model name for a .pth that does not record it")
    pose.add_argument("--detector", default="hog", metavar="hog|whole|FILE.onnx",
                      help="person detector (default: OpenCV's HOG, no files needed)")
    pose.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crops)")
    pose.add_argument("--post-process", choices=("quarter", "dark", "none"), default="quarter")
    pose.add_argument("-o", "--output", metavar="FILE.jsonl", help="write the JSON lines here instead of stdout")
    pose.set_defaults(func=cmd_pose, io=io_pose, output_flags=("-o",))

    build = sub.add_parser("build", help="build a TensorRT engine (+ sidecar JSON) from an exported ONNX file")
    build.add_argument("onnx", metavar="MODEL.onnx")
    build.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    _add_calibration_options(build)
    build.add_argument("--batch", type=_positive_int, metavar="N",
                       help="fixed batch size (else --min/--opt/--max-batch, default 1/4/8)")
    build.add_argument("--min-batch", type=_positive_int, metavar="N")
    build.add_argument("--opt-batch", type=_positive_int, metavar="N")
    build.add_argument("--max-batch", type=_positive_int, metavar="N")
    build.add_argument("--workspace", type=_positive_int, default=1024, metavar="MiB", help="builder workspace (1024)")
    build.add_argument("--timing-cache", metavar="FILE", help="reuse and update a timing cache, e.g. engines/timing.cache")
    build.add_argument("--dla-core", type=_non_negative_int, metavar="N", help="build for a DLA core (Xavier/Orin; the TX2 has none)")
    build.add_argument("--force", action="store_true", help="build a precision the GPU has no fast path for")
    build.add_argument("-o", "--output", metavar="FILE.engine",
                       help="default: engines/<model>_<HxW>_<precision>_b<min>-<max>_trt<version>_<gpu>.engine")
    build.add_argument("--print-trtexec", action="store_true", help="print the equivalent trtexec command")
    build.add_argument("--verify", action="store_true", help="compare the engine with onnxruntime on real crops")
    build.add_argument("--image", action="append", default=[], metavar="IMG[@x,y,w,h]",
                       help="person photo for --verify (besides the calibration crops)")
    build.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    build.set_defaults(func=cmd_build, io=io_build, output_flags=("-o", "--timing-cache"))

    platform = sub.add_parser("platform", help="GPU, TensorRT version and fast FP16/INT8 of this machine (JSON)")
    platform.add_argument("--require", action="append", choices=("fp16", "int8"), default=[],
                          help="exit 1 unless the GPU has this fast precision")
    platform.set_defaults(func=cmd_platform, io=io_none)

    train_cmd = sub.add_parser("train", help="train a model on COCO keypoints with the paper's recipe (host, torch)")
    from goatpose_edge.train.options import add_train_arguments

    add_train_arguments(train_cmd)
    train_cmd.set_defaults(func=cmd_train, io=io_train, output_flags=("--out",))

    env = sub.add_parser("env", help="where this runs: Jetson L4T, power mode, clocks, TensorRT, fast FP16/INT8")
    env.add_argument("--json", action="store_true", help="the full environment record as JSON")
    env.set_defaults(func=cmd_env, io=io_none)

    quantize = sub.add_parser("quantize", help="INT8 Q/DQ ONNX with onnxruntime, and its measured accuracy cost")
    quantize.add_argument("onnx", metavar="MODEL.onnx")
    _add_calibration_options(quantize)
    quantize.add_argument("-o", "--output", metavar="FILE.onnx", help="default: <MODEL>_qdq.onnx")
    quantize.set_defaults(func=cmd_quantize, io=io_quantize, output_flags=("-o",))

    bench = sub.add_parser("bench", help="latency/throughput per batch, per-stage video timing, side by side")
    bench.add_argument("artefacts", nargs="+", metavar="ARTEFACT", help=".onnx, .engine or .pth files")
    bench.add_argument("--batch", type=_int_list, default=[1, 8], metavar="1,8", help="batch sizes (default 1,8)")
    bench.add_argument("--warmup", type=_non_negative_int, default=5, metavar="N", help="untimed calls per batch size (5)")
    bench.add_argument("--iters", type=_positive_int, default=30, metavar="N", help="timed calls per batch size (30)")
    bench.add_argument("--threads", type=_thread_count, metavar="N", help="CPU threads for onnxruntime/torch (default: all)")
    bench.add_argument("--video", metavar="FILE", help="also run goatpose video's streaming engine on this video, "
                       "per configuration")
    bench.add_argument("--max-frames", type=_positive_int, metavar="N", help="frames of --video per stream (default: all)")
    add_engine_arguments(bench, bench=True)
    bench.add_argument("--pipeline", type=_word_list("sequential", "pipelined"), default=["sequential", "pipelined"],
                       metavar="sequential,pipelined", help="engine schedules to compare (both)")
    bench.add_argument("--detect", type=_word_list("sync", "async"), default=["sync"], metavar="sync,async",
                       help="detection modes to compare (sync)")
    bench.add_argument("--workers", type=_workers_list, default=[None], metavar="auto,1,2",
                       help="pose worker counts to compare (auto: the backend's default)")
    bench.add_argument("--streams", type=_int_list, default=[1], metavar="1,3",
                       help="the video replayed K times side by side, per K (1)")
    bench.add_argument("--repeats", type=_positive_int, default=1, metavar="N",
                       help="rounds over all configurations, interleaved; the median run is reported (1)")
    bench.add_argument("--person-batching", action="store_true",
                       help="persons/s of the batched pipeline vs a per-crop loop on frames of --video")
    bench.add_argument("--batching-frames", type=_positive_int, default=10, metavar="N", help="frames for --person-batching")
    bench.add_argument("--profile-ops", action="store_true", help="onnxruntime per-op-type profile of each .onnx")
    bench.add_argument("--baseline", metavar="ARTEFACT|MODEL",
                       help="artefact the ratios are taken against (default: the first HRNet per backend)")
    bench.add_argument("--title", help="heading of the Markdown report")
    bench.add_argument("--out", metavar="benchmarks/NAME", help="write NAME.json and NAME.md (+ NAME_ap_fps.png)")
    bench.set_defaults(func=cmd_bench, io=io_bench, output_flags=("--out",))

    evaluate = sub.add_parser("eval", help="COCO keypoint AP of an artefact with HRNet's protocol (pycocotools)")
    evaluate.add_argument("artefact", metavar="ARTEFACT", help=".onnx, .engine or .pth")
    evaluate.add_argument("--coco-root", required=True, metavar="DIR",
                          help="COCO folder (images in DIR/val2017, DIR/images/val2017 or DIR)")
    evaluate.add_argument("--ann", metavar="FILE", help="default: DIR/annotations/person_keypoints_val2017.json")
    boxes = evaluate.add_mutually_exclusive_group()
    boxes.add_argument("--det-json", metavar="FILE", help="person detections (COCO results), e.g. HRNet's AP 56 boxes")
    boxes.add_argument("--gt-boxes", action="store_true", help="ground-truth person boxes (the default)")
    evaluate.add_argument("--flip", dest="flip", action="store_true", default=True, help="flip test (default on)")
    evaluate.add_argument("--no-flip", dest="flip", action="store_false")
    evaluate.add_argument("--post-process", choices=("quarter", "dark", "none"), default="quarter")
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help="first N images only, for quick runs")
    evaluate.add_argument("--threads", type=_thread_count, metavar="N", help="CPU threads for onnxruntime/torch")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.add_argument("--out", metavar="benchmarks/NAME", help="write NAME.json (AP) and NAME_results.json")
    evaluate.set_defaults(func=cmd_eval, io=io_eval, output_flags=("--out",))

    video = sub.add_parser("video", help="pose on video files, cameras, URLs, Jetson CSI cameras or GStreamer "
                           "pipelines, one or many at once")
    add_video_arguments(video)
    video.set_defaults(func=cmd_video, io=io_video, output_flags=("-o", "--jsonl", "--summary-json"))

    lint_cmd = sub.add_parser("lint", help="check that TensorRT 8 (or 10) can parse an ONNX file")
    lint_cmd.add_argument("onnx", metavar="FILE.onnx")
    lint_cmd.add_argument("--target", choices=("trt8", "trt10"), default="trt8")
    lint_cmd.set_defaults(func=cmd_lint, io=io_none)
    return parser


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``goatpose build: error: ... (see goatpose build --help)``."""

    def error(self, message):
        self.exit(2, "{}: error: {} (see {} --help)\n".format(self.prog, message, self.prog))


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
                print("goatpose: error: no space left on the device: {}".format(exc.filename or exc), file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
