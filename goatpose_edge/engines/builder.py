"""``goatpose build``: an exported ONNX file to a TensorRT engine + sidecar, on TensorRT 8.0/8.2 (TX2) and 10.x.

``build_engine`` runs these steps in order, each a function below:

    _read_source          the contract from the ONNX, and whether it is a Q/DQ graph; an ONNX without a contract is a
                          person detector (a YOLO export): FP32/FP16, batch 1 unless asked, checked once parsed
    _require_calibration  INT8 has images, a calibration cache or Q/DQ nodes to take its ranges from
    _open_tensorrt        tensorrt, its API generation (``runtime.trt_api``), the CUDA context, the logger
    _probe                the builder, and the platform it reports (fast FP16/INT8, DLA cores, precision flags)
    _decide_precision     the precision policy (``policy``); a --dla-core the platform has, at FP16 or INT8
    _precision_graph      TensorRT >= 11 has no FP16/INT8 builder flags: an FP16 copy of the graph, or the Q/DQ graph
                          of ``engines.qdq`` (explicit precision)
    _parse                the network (the parser's errors listed)
    _detector             a detector's fixed input size and YOLO output layout, from the parsed network
    _built_profile        the batch profile, unless the ONNX fixes the batch; one fixed batch for a DLA core
    _output_paths         the engine's name (the default one is known only now) and every output checked; on
                          TensorRT >= 11 the precision graph is kept beside the engine (``<engine>.fp16.onnx``)
    _configure            workspace and optimisation profile
    _timing_cache         the timing cache of this GPU and TensorRT, or a fresh one
    _configure_precision  precision flags; INT8 calibrator and cache at its own calibration profile
    _configure_dla        DLA core with GPU fallback
    _build_plan           the serialized plan, Ctrl-C and SIGTERM deferred until it returns (the calibrator freed,
                          its error or the signal raised)
    _sidecar              what the plan does not say (the builder flags set, the graph parsed)
    _write_outputs        plan, sidecar, precision graph, calibration cache and timing cache, atomically
    _trtexec              the trtexec line of the same engine, from the graph it was built from

Nothing is left behind on failure.
"""

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from goatpose_edge.artefact.contract import INPUT_NAME, METADATA_KEY, ModelContract
from goatpose_edge.artefact.onnx_meta import read_complexity, read_contract, read_metadata
from goatpose_edge.artefact.sidecar import (ENGINE_SUFFIXES, SIDECAR_FORMAT, EngineSidecar, default_engine_path,
                                           sha256_of, sidecar_path, utc_now, write_sidecar)
from goatpose_edge.engines import calibration
from goatpose_edge.engines.calibrator import make_entropy_calibrator
from goatpose_edge.engines.deferred_signals import DeferredSignals
from goatpose_edge.engines.policy import PlatformCaps, PrecisionDecision, choose_precision
from goatpose_edge.engines.qdq import QDQ_METADATA_KEY
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import Kind, Output, atomic_output, check_io, json_record
from goatpose_edge.runtime.cuda import CudaContext
from goatpose_edge.runtime.trt_api import TensorsApi, import_tensorrt, make_logger, trt_api

TIMING_CACHE_SUFFIXES = (".cache", ".timing")


class EngineBuildError(GoatPoseError):
    """TensorRT could not parse the ONNX file or build the engine."""


@dataclass
class BatchProfile:
    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self):
        if not 1 <= self.min <= self.opt <= self.max:
            raise EngineBuildError("batch profile needs 1 <= min <= opt <= max, got {}/{}/{}".format(
                self.min, self.opt, self.max))

    def as_dict(self):
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def requested(cls, batch: Optional[int] = None, min_batch: Optional[int] = None, opt_batch: Optional[int] = None,
                  max_batch: Optional[int] = None) -> "BatchProfile":
        """The profile ``goatpose build`` asks for: ``batch`` fixes it (N/N/N); else min/opt/max as given, each
        defaulting to 1..8 with opt 4, tuned for 4 persons (a top-down pipeline batches the persons of a frame): the
        default max is at least the min and opt given, the default opt stays within min..max."""
        if batch is not None and any(v is not None for v in (min_batch, opt_batch, max_batch)):
            raise EngineBuildError("--batch N fixes the batch: give it or --min/--opt/--max-batch, not both")
        if batch is not None:
            return cls(batch, batch, batch)
        maximum = max_batch or max(8, opt_batch or 1, min_batch or 1)
        minimum = min_batch or 1
        return cls(minimum, opt_batch or max(minimum, min(4, maximum)), maximum)


@dataclass
class BuildOptions:
    precision: str = "fp16"
    #: None: the kind's default, a pose model's 1/4/8 (``BatchProfile.requested()``), a detector's 1 (one frame)
    profile: Optional[BatchProfile] = None
    workspace_mib: int = 1024
    timing_cache: Optional[str] = None
    dla_core: Optional[int] = None
    force: bool = False
    calib_sources: Sequence = ()  # (image path, box or None) pairs, see engines.calibration
    calib_count: int = 256
    calib_batch: int = 8
    calib_cache: Optional[str] = None
    calib_label: str = ""  # where the calibration crops came from, for the sidecar
    verbose: bool = False
    overwrite: bool = False  # replace files at the derived names (sidecar, caches) that goatpose build did not write


@dataclass
class BuildResult:
    engine_path: str
    sidecar: EngineSidecar
    decision: PrecisionDecision
    caps: PlatformCaps
    trtexec: str = ""  # the trtexec line that builds the same engine (``goatpose build --print-trtexec``)


def calibration_cache_path(engine_path: str) -> str:
    """Where an INT8 build keeps its calibration cache by default: ``<engine name>.calib`` beside the engine."""
    return os.path.splitext(engine_path)[0] + ".calib"


def precision_graph_path(engine_path: str, graph_path: str) -> str:
    """Where a TensorRT >= 11 build keeps the graph it parsed (``fp16.onnx``, ``qdq.onnx``): ``<engine>.fp16.onnx``
    beside the engine, for trtexec and for the record."""
    return "{}.{}".format(os.path.splitext(engine_path)[0], os.path.basename(graph_path))


_CACHE_HEADER = re.compile(rb"TRT-\d+-\w+\r?\n")  # what TensorRT writes first: TRT-8201-EntropyCalibration2


def _is_calibration_cache(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return bool(_CACHE_HEADER.match(f.read(64)))
    except OSError:
        return False


def derived_kinds(engine_path: str, calib_cache: Optional[str] = None) -> dict:
    """The files named after the engine that only ``goatpose build`` may replace (an existing file there that it
    did not write is refused, naming --overwrite): its sidecar, the calibration cache and the record of what made
    that cache."""
    from goatpose_edge.engines.calibrator import CALIBRATION_FORMAT, calibration_record_path

    cache = calib_cache or calibration_cache_path(engine_path)
    return {sidecar_path(engine_path): json_record("an engine sidecar of goatpose build", SIDECAR_FORMAT),
            cache: Kind("a TensorRT calibration cache", _is_calibration_cache),
            calibration_record_path(cache): json_record("a calibration record of goatpose build",
                                                        CALIBRATION_FORMAT)}


def build_outputs(engine_path: str, calibrated: bool, timing_cache: Optional[str] = None,
                  calib_cache: Optional[str] = None, option: str = "the engine", create_parent: bool = True,
                  precision_graph: Optional[str] = None, overwrite: bool = False) -> List[Output]:
    """Every file a build writes: the engine, its sidecar and, for an INT8 calibration, the calibration cache and its
    record (``calibrated``), the timing cache, and on TensorRT >= 11 the precision graph. The CLI checks them before
    anything starts (``-o`` given) and ``build_engine`` again once the default name (and TensorRT) is known."""
    from goatpose_edge.engines.calibrator import calibration_record_path

    kinds = {} if overwrite else derived_kinds(engine_path, calib_cache)

    def out(path, what, suffixes=()):
        return Output(path, what, suffixes, create_parent=create_parent, kind=kinds.get(path))

    outputs = [out(engine_path, option, ENGINE_SUFFIXES), out(sidecar_path(engine_path), "the sidecar of " + option)]
    if calibrated:
        cache = calib_cache or calibration_cache_path(engine_path)
        outputs += [out(cache, "the calibration cache of " + option),
                    out(calibration_record_path(cache), "the calibration record of " + option)]
    if timing_cache:
        outputs.append(out(timing_cache, "--timing-cache", TIMING_CACHE_SUFFIXES))
    if precision_graph:
        outputs.append(out(precision_graph, "the precision graph of " + option, (".onnx",)))
    return outputs


def build_inputs(onnx_path: str, options: "BuildOptions") -> List[Tuple[str, str]]:
    """What a build reads: the ONNX, the calibration images and the file they were listed in (``calib_label``)."""
    inputs = [("MODEL.onnx", onnx_path)] + [("calibration image", path) for path, _ in options.calib_sources]
    if options.calib_label and os.path.isfile(options.calib_label):
        inputs.append(("the calibration annotations", options.calib_label))
    return inputs


def fast_precisions(compute_capability) -> tuple:
    """(fast FP16, fast INT8) of a GPU by compute capability, for TensorRT >= 11 where the builder no longer says
    (``platform_has_fast_fp16/int8`` deprecated in 10.5, removed in 11). FP16 at full rate: sm 5.3 (TX1, Nano),
    6.0, 6.2 (TX2) and >= 7.0, not 6.1 (GeForce 10); INT8 (dp4a or tensor cores): 6.1 and >= 7.0, not the TX2."""
    cc = tuple(int(v) for v in compute_capability)
    return cc in ((5, 3), (6, 0), (6, 2)) or cc >= (7, 0), cc == (6, 1) or cc >= (7, 0)


def probe_platform(trt, builder, cuda_context: CudaContext) -> PlatformCaps:
    compute_capability = cuda_context.compute_capability
    by_capability = fast_precisions(compute_capability)
    fp16 = getattr(builder, "platform_has_fast_fp16", None)
    int8 = getattr(builder, "platform_has_fast_int8", None)
    return PlatformCaps(gpu_name=cuda_context.gpu_name, compute_capability=compute_capability,
                        tensorrt_version=trt.__version__,
                        fast_fp16=bool(by_capability[0] if fp16 is None else fp16),
                        fast_int8=bool(by_capability[1] if int8 is None else int8),
                        dla_cores=int(getattr(builder, "num_DLA_cores", 0)),
                        precision_flags=hasattr(trt.BuilderFlag, "FP16"))


def platform_caps(device: int = 0) -> PlatformCaps:
    """This machine's GPU and TensorRT, as the builder sees them."""
    trt = import_tensorrt()
    cuda_context = CudaContext(device)
    with cuda_context.active():
        return probe_platform(trt, trt.Builder(make_logger(trt)), cuda_context)


def trtexec_command(onnx_path: str, engine_path: str, flags: Sequence[str], profile: BatchProfile, input_size,
                    workspace_mib: int, named_tensors: bool, timing_cache: Optional[str] = None,
                    dla_core: Optional[int] = None, calib_cache: Optional[str] = None,
                    input_name: str = INPUT_NAME) -> str:
    """The trtexec line that builds the same engine (for users who want TensorRT's own tool); ``named_tensors``:
    TensorRT >= 10's trtexec (``--memPoolSize`` instead of ``--workspace``)."""
    height, width = input_size

    def shape(n):
        return "{}:{}x3x{}x{}".format(input_name, n, height, width)

    parts = ["trtexec", "--onnx=" + onnx_path, "--saveEngine=" + engine_path]
    parts += ["--" + f for f in flags]
    if "int8" in flags and calib_cache:
        parts.append("--calib=" + calib_cache)
    parts += ["--minShapes=" + shape(profile.min), "--optShapes=" + shape(profile.opt),
              "--maxShapes=" + shape(profile.max)]
    parts.append("--memPoolSize=workspace:{}M".format(workspace_mib) if named_tensors
                 else "--workspace={}".format(workspace_mib))
    if timing_cache:
        parts.append("--timingCacheFile=" + timing_cache)
    if dla_core is not None:
        parts += ["--useDLACore={}".format(dla_core), "--allowGPUFallback"]
    return " ".join(parts)


@dataclass
class _Source:
    """The ONNX a build starts from: a pose model (its contract) or a person detector (no contract)."""

    onnx_path: str
    contract: Optional[ModelContract]  # None: a detector, whose input and layout ``_detector`` reads once parsed
    explicit: bool  # a Q/DQ graph from `goatpose quantize`: INT8 without a calibrator
    detector: Optional[dict] = None  # a detector's {"input_name", "input_size": [H, W], "layout"}

    @property
    def name(self) -> str:
        """The model's name: the contract's, or the detector file's without .onnx (``yolov8n``)."""
        if self.contract is not None:
            return self.contract.name
        return os.path.splitext(os.path.basename(self.onnx_path))[0]

    @property
    def input_size(self) -> Tuple[int, int]:
        if self.contract is not None:
            return tuple(self.contract.input_size)
        return tuple(self.detector["input_size"])

    @property
    def input_name(self) -> str:
        return self.contract.input_name if self.contract is not None else self.detector["input_name"]

    @property
    def kind(self) -> str:
        return "pose" if self.contract is not None else "detector"

    def default_profile(self) -> BatchProfile:
        """A pose model batches a frame's persons (1/4/8, ``BatchProfile.requested``); a detector takes one frame."""
        return BatchProfile.requested() if self.contract is not None else BatchProfile(1, 1, 1)


@dataclass
class _TensorRT:
    """The ``tensorrt`` module of this build, its API generation, CUDA context, logger and (once probed) builder."""

    trt: Any
    api: Any
    cuda_context: CudaContext
    logger: Any
    builder: Any = None


@dataclass
class _Parsed:
    network: Any
    parser: Any  # kept as long as the network: the ONNX parser owns the weights until the build
    input: Any  # the network's input tensor
    static_batch: int  # the batch the ONNX fixes (exported with --batch N), 0 for a dynamic batch axis


@dataclass
class _Paths:
    engine: str
    calib_cache: str
    calibrated: bool  # an entropy calibration (TensorRT < 11, no Q/DQ graph): calib_cache is written after the build
    graph: str = ""  # the ONNX parsed: the source, or (TensorRT >= 11) the precision graph in the build's folder
    precision_graph: Optional[str] = None  # where that precision graph is kept beside the engine, None for the source


def _read_source(onnx_path: str, precision: str = "fp16") -> _Source:
    """The ONNX's contract (``goatpose export``), or none: then it is built as a person detector (a YOLO export), at
    FP32 or FP16 only (INT8 calibration here takes person crops, what a pose model reads, not whole frames)."""
    metadata = read_metadata(onnx_path)
    contract = read_contract(onnx_path) if METADATA_KEY in metadata else None
    if contract is None and precision == "int8":
        raise EngineBuildError("{} carries no goatpose model contract, so it is built as a person detector, and "
                               "detector engines are FP16 or FP32 here (INT8 calibration takes person crops, not "
                               "frames; a TX2 has no fast INT8 anyway): give --precision fp16 (a pose model: export "
                               "it with `goatpose export`, which records its contract)".format(onnx_path))
    return _Source(onnx_path, contract, QDQ_METADATA_KEY in metadata)


def _require_calibration(source: _Source, options: BuildOptions, output: Optional[str]) -> None:
    """INT8 needs something to take its ranges from: images, a calibration cache already made, or Q/DQ nodes."""
    known_cache = options.calib_cache or (calibration_cache_path(output) if output else None)
    if options.precision == "int8" and not source.explicit and not options.calib_sources and not (
            known_cache and os.path.isfile(known_cache)):
        raise EngineBuildError("INT8 needs calibration images: --calib-images DIR or --calib-coco ANN IMGDIR "
                               "(or a Q/DQ graph from `goatpose quantize`)")


def _open_tensorrt(verbose: bool) -> _TensorRT:
    trt = import_tensorrt()
    api = trt_api(trt)
    cuda_context = CudaContext()
    return _TensorRT(trt, api, cuda_context, make_logger(trt, verbose))


def _probe(rt: _TensorRT) -> PlatformCaps:
    """The builder (created in the active CUDA context) and what it says the platform offers."""
    rt.builder = rt.trt.Builder(rt.logger)
    return probe_platform(rt.trt, rt.builder, rt.cuda_context)


def _decide_precision(options: BuildOptions, caps: PlatformCaps, log) -> PrecisionDecision:
    """The precision policy's decision (its note logged), and a --dla-core the platform has at a precision DLA runs:
    it has no FP32 layers, so with GPU fallback an FP32 engine would run wholly on the GPU (NVIDIA's DLA samples
    build FP16 or INT8)."""
    decision = choose_precision(options.precision, caps, options.force)
    if decision.note:
        log("precision: " + decision.note)
    if options.dla_core is not None and not 0 <= options.dla_core < caps.dla_cores:
        raise EngineBuildError("--dla-core {}: {} has {} DLA core(s)".format(
            options.dla_core, caps.gpu_name, caps.dla_cores))
    if options.dla_core is not None and decision.effective == "fp32":
        raise EngineBuildError("--dla-core {}: DLA runs FP16 and INT8 layers only, an FP32 engine would run wholly on "
                               "the GPU: build with --precision fp16 or int8".format(options.dla_core))
    return decision


def _precision_graph(source: _Source, decision: PrecisionDecision, caps: PlatformCaps, options: BuildOptions,
                     folder: str) -> str:
    """The ONNX to parse. TensorRT >= 11 has no FP16/INT8 builder flags: there the graph itself carries the precision
    (FP16 weights, or Q/DQ nodes for INT8), written into ``folder``."""
    onnx_path, contract = source.onnx_path, source.contract
    if caps.precision_flags or source.explicit:
        return onnx_path
    if decision.effective == "int8":
        from goatpose_edge.engines.qdq import quantize_qdq

        crops = calibration.calibration_crops(options.calib_sources, contract, options.calib_count)
        return quantize_qdq(onnx_path, crops, os.path.join(folder, "qdq.onnx"))
    if decision.effective == "fp16":
        try:
            import onnx
            from onnxconverter_common import float16
        except ImportError as exc:
            raise EngineBuildError("FP16 on TensorRT >= 11 needs an FP16 graph: pip install onnx "
                                   "onnxconverter-common") from exc
        path = os.path.join(folder, "fp16.onnx")
        onnx.save(float16.convert_float_to_float16(onnx.load(onnx_path), keep_io_types=True), path)
        return path
    return onnx_path


def _parse(rt: _TensorRT, onnx_path: str) -> _Parsed:
    """The network of ``onnx_path``; the parser's errors (the first five) in one line when it refuses."""
    network = rt.builder.create_network(rt.api.network_flags())
    parser = rt.trt.OnnxParser(network, rt.logger)
    with open(onnx_path, "rb") as f:
        ok = parser.parse(f.read())
    if not ok:
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise EngineBuildError("TensorRT {} could not parse {}: {}".format(
            rt.trt.__version__, onnx_path, "; ".join(errors[:5]) or "no parser message"))
    input_tensor = network.get_input(0)
    return _Parsed(network, parser, input_tensor, max(int(input_tensor.shape[0]), 0))


def _detector(source: _Source, parsed: _Parsed) -> None:
    """A detector's record from its parsed network (``source.detector``): a fixed [N, 3, H, W] input and a YOLO
    output layout (``detection.yolo.guess_layout``), else one line saying what the file is not. Pose models pass."""
    from goatpose_edge.detection.base import DetectorError
    from goatpose_edge.detection.yolo import guess_layout

    if source.contract is not None:
        return
    path = source.onnx_path
    shape = [int(d) for d in parsed.input.shape]
    if len(shape) != 4 or shape[1] != 3 or min(shape[2:]) <= 0:
        raise EngineBuildError("{} carries no goatpose model contract, so it is built as a person detector, but its "
                               "input {} {} is not an image of a fixed size [N, 3, H, W]: export the detector at one "
                               "size (e.g. `yolo export ... imgsz=640`, not dynamic=True); pose models: export them "
                               "with `goatpose export`".format(path, parsed.input.name, shape))
    output = parsed.network.get_output(0)
    out_shape = [int(d) for d in output.shape]
    size = (shape[2], shape[3])
    try:
        layout = guess_layout([1] + out_shape[1:] if len(out_shape) == 3 else out_shape, size)
    except DetectorError as exc:
        raise EngineBuildError("{} carries no goatpose model contract and is no YOLO detector either ({}): export "
                               "pose models with `goatpose export`; detectors: a YOLOX, YOLOv5 or YOLOv8 "
                               "ONNX".format(path, exc)) from exc
    source.detector = {"input_name": parsed.input.name, "input_size": list(size), "layout": layout}


def _built_profile(requested: BatchProfile, static_batch: int, onnx_path: str, log,
                   dla_core: Optional[int] = None) -> BatchProfile:
    """The profile the engine gets: the requested one, unless the ONNX fixes the batch (exported with --batch N).
    A DLA core runs one fixed shape (min = opt = max): with a range the whole network would run on the GPU."""
    profile = requested
    if static_batch > 0 and (requested.min, requested.max) != (static_batch, static_batch):
        log("{} has a static batch of {}: profile {}..{} replaced by it".format(
            onnx_path, static_batch, requested.min, requested.max))
        profile = BatchProfile(static_batch, static_batch, static_batch)
    if dla_core is not None and profile.min != profile.max:
        raise EngineBuildError("--dla-core {}: DLA runs one fixed batch, not the profile {}..{} (the whole network "
                               "would run on the GPU): give --batch N".format(dla_core, profile.min, profile.max))
    return profile


def _output_paths(output: Optional[str], source: _Source, decision: PrecisionDecision, profile: BatchProfile,
                  caps: PlatformCaps, options: BuildOptions, graph: Optional[str] = None) -> _Paths:
    """The engine's path (``output`` or the default name, known only now), the calibration cache's and, when the
    build parses a precision graph of its own (``graph``), where it is kept; every file the build writes checked
    against what it reads before TensorRT starts building."""
    engine = output or default_engine_path(source.name, source.input_size, decision.effective, profile.as_dict(),
                                           caps.tensorrt_version, caps.gpu_name,
                                           flip=source.contract is not None and source.contract.flip_merged)
    calib_cache = options.calib_cache or calibration_cache_path(engine)
    calibrated = "int8" in decision.flags and not source.explicit and caps.precision_flags
    graph = graph or source.onnx_path
    kept = precision_graph_path(engine, graph) if graph != source.onnx_path else None
    check_io(build_outputs(engine, calibrated, options.timing_cache, calib_cache, precision_graph=kept,
                           overwrite=options.overwrite), build_inputs(source.onnx_path, options))
    return _Paths(engine, calib_cache, calibrated, graph, kept)


def _configure(rt: _TensorRT, parsed: _Parsed, profile: BatchProfile, workspace_mib: int, input_size):
    """The builder config: workspace and the optimisation profile over the batch (``input_size``: H, W)."""
    config = rt.builder.create_builder_config()
    rt.api.set_workspace(config, workspace_mib << 20)
    height, width = input_size
    trt_profile = rt.builder.create_optimization_profile()
    shapes = [(n, 3, height, width) for n in (profile.min, profile.opt, profile.max)]
    trt_profile.set_shape(parsed.input.name, *shapes)
    if config.add_optimization_profile(trt_profile) < 0:  # the profile's index, -1 when TensorRT finds it invalid
        raise EngineBuildError("TensorRT {} refused the optimisation profile of input {!r}: min {} opt {} max {} "
                               "(its log above says why)".format(rt.trt.__version__, parsed.input.name,
                                                                *[list(shape) for shape in shapes]))
    return config


def _qdq_record(source: _Source, decision: PrecisionDecision, caps: PlatformCaps, options: BuildOptions
                ) -> Optional[dict]:
    """The sidecar's calibration record of an INT8 build without a calibrator: the Q/DQ graph given, or (TensorRT
    >= 11) the one ``_precision_graph`` made; None for FP32/FP16 and for an entropy calibration."""
    if "int8" not in decision.flags:
        return None
    if not caps.precision_flags:
        return {"method": "qdq", "source": options.calib_label or source.onnx_path,
                "made_at_build": not source.explicit}
    return {"method": "qdq", "source": source.onnx_path} if source.explicit else None


def _configure_precision(rt: _TensorRT, config, parsed: _Parsed, source: _Source, decision: PrecisionDecision,
                         caps: PlatformCaps, options: BuildOptions, paths: _Paths, log,
                         stop=lambda: False) -> Tuple[Any, Optional[dict]]:
    """The precision flags and, for an entropy calibration, the calibrator at its own calibration profile, ended
    early once ``stop()`` (a deferred signal): (the calibrator or None, the sidecar's calibration record or None)."""
    if caps.precision_flags:
        if "fp16" in decision.flags:
            config.set_flag(rt.trt.BuilderFlag.FP16)
        if "int8" in decision.flags:
            config.set_flag(rt.trt.BuilderFlag.INT8)
    if not paths.calibrated:
        return None, _qdq_record(source, decision, caps, options)
    calib_batch = parsed.static_batch or options.calib_batch
    calibrator, record = _calibrator(rt.trt, rt.builder, rt.cuda_context, options, source.contract, source.onnx_path,
                                     parsed.input.name, paths.calib_cache, calib_batch, log, stop)
    config.int8_calibrator = calibrator
    # TensorRT calibrates at the calibration profile's kOPT shape: its own, of exactly the batch fed
    height, width = source.contract.input_size
    calib_profile = rt.builder.create_optimization_profile()
    calib_shape = (calib_batch, 3, height, width)
    calib_profile.set_shape(parsed.input.name, calib_shape, calib_shape, calib_shape)
    if config.set_calibration_profile(calib_profile) is False:
        raise EngineBuildError("TensorRT {} refused the calibration profile {}".format(
            rt.trt.__version__, list(calib_shape)))
    return calibrator, record


def _configure_dla(trt, config, dla_core: Optional[int]) -> None:
    """A DLA core as the default device, layers it cannot run falling back to the GPU."""
    if dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _build_plan(rt: _TensorRT, parsed: _Parsed, config, calibrator, record: Optional[dict], onnx_path: str,
                signals: Optional[DeferredSignals] = None, log=lambda line: None):
    """The serialized engine; the calibrator's device memory is freed whatever happens. Ctrl-C and SIGTERM are only
    recorded while TensorRT builds (``signals``, which the calibrator's ``stop`` asks) and raised as it returns,
    before anything is written; then the calibrator's error."""
    try:
        with signals or DeferredSignals():
            plan = rt.builder.build_serialized_network(parsed.network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if calibrator is not None:
        _check_calibration(calibrator, record, log)
    if plan is None:
        raise EngineBuildError("TensorRT could not build an engine from {} (its log above says why)".format(onnx_path))
    return plan


def _sidecar(source: _Source, decision: PrecisionDecision, caps: PlatformCaps, profile: BatchProfile,
             record: Optional[dict], dla_core: Optional[int], started: float,
             precision_graph: Optional[str] = None) -> EngineSidecar:
    """The build's record. ``builder_flags`` are the flags set on the builder: none on TensorRT >= 11, where the
    precision is in the graph parsed (``precision_graph``, kept beside the engine)."""
    onnx_path = source.onnx_path
    return EngineSidecar(
        contract=source.contract.to_dict() if source.contract is not None else None, kind=source.kind,
        detector=source.detector, requested_precision=decision.requested,
        effective_precision=decision.effective,
        builder_flags=list(decision.flags) if caps.precision_flags else [], precision_graph=precision_graph,
        tensorrt_version=caps.tensorrt_version, gpu_name=caps.gpu_name,
        compute_capability=list(caps.compute_capability), batch_profile=profile.as_dict(), onnx_path=onnx_path,
        onnx_sha256=sha256_of(onnx_path), calibration=record, dla_core=dla_core,
        build_seconds=round(time.time() - started, 1), built_at=utc_now(), precision_note=decision.note,
        complexity=read_complexity(onnx_path))


def _write_outputs(paths: _Paths, plan, sidecar: EngineSidecar, calibrator, record: Optional[dict], timing_cache,
                   timing_cache_path: Optional[str]) -> None:
    """Plan, sidecar and precision graph, then a new calibration cache and the timing cache, each written
    atomically."""
    with atomic_output(paths.engine) as tmp_path:
        with open(tmp_path, "wb") as f:
            f.write(plan)
        write_sidecar(paths.engine, sidecar)
        if paths.precision_graph:
            with atomic_output(paths.precision_graph) as graph_path:
                shutil.copyfile(paths.graph, graph_path)
    cache = calibrator.fresh_cache() if calibrator is not None else None
    if cache is not None:
        from goatpose_edge.engines.calibrator import write_cache

        write_cache(paths.calib_cache, cache, calibrator.key, record)
    if timing_cache is not None:
        with atomic_output(timing_cache_path) as tmp_path:
            with open(tmp_path, "wb") as f:
                f.write(timing_cache.serialize())


def _trtexec(source: _Source, paths: _Paths, sidecar: EngineSidecar, options: BuildOptions, api) -> str:
    """The trtexec line of the engine just built, for the API generation the builder used: from the graph it was
    built from, with the flags set on its builder (TensorRT >= 11's trtexec has no precision flags: the graph has
    the precision)."""
    onnx_path = sidecar.precision_graph or source.onnx_path
    return trtexec_command(onnx_path, paths.engine, sidecar.builder_flags, BatchProfile(**sidecar.batch_profile),
                           source.input_size, options.workspace_mib, isinstance(api, TensorsApi),
                           options.timing_cache, options.dla_core, (sidecar.calibration or {}).get("cache"),
                           input_name=source.input_name)


def build_engine(onnx_path: str, output: Optional[str] = None, options: Optional[BuildOptions] = None,
                 log=lambda line: None) -> BuildResult:
    """``onnx_path`` to a TensorRT engine at ``output`` (default: ``default_engine_path``) with its sidecar."""
    options = options or BuildOptions()
    source = _read_source(onnx_path, options.precision)
    rt = _open_tensorrt(options.verbose)
    started = time.time()
    signals = DeferredSignals()
    with rt.cuda_context.active(), tempfile.TemporaryDirectory(prefix="goatpose-build-") as folder:
        caps = _probe(rt)
        decision = _decide_precision(options, caps, log)  # INT8 on a GPU without fast INT8 is refused here, before
        _require_calibration(source, options, output)  # calibration images are asked for
        graph = _precision_graph(source, decision, caps, options, folder)
        parsed = _parse(rt, graph)
        _detector(source, parsed)
        profile = _built_profile(options.profile or source.default_profile(), parsed.static_batch, onnx_path, log,
                                 options.dla_core)
        if source.contract is None and profile.min != 1:  # YoloDetector sends one frame at a time
            raise EngineBuildError("{}: a detector engine takes one frame at a time, so its batch profile starts at "
                                   "1, not {} (drop --batch/--min-batch; an ONNX exported at batch {}: export it at "
                                   "batch 1)".format(onnx_path, profile.min, profile.min))
        paths = _output_paths(output, source, decision, profile, caps, options, graph)
        config = _configure(rt, parsed, profile, options.workspace_mib, source.input_size)
        timing_cache = _timing_cache(rt.trt, config, options.timing_cache, log) if options.timing_cache else None
        calibrator, record = _configure_precision(rt, config, parsed, source, decision, caps, options, paths, log,
                                                  signals.pending)
        _configure_dla(rt.trt, config, options.dla_core)
        log("building {} engine for {}{} (batch {}..{}) on {} ...".format(
            decision.effective.upper(), "" if source.contract is not None else "the detector ", source.name,
            profile.min, profile.max, caps.describe()))
        plan = _build_plan(rt, parsed, config, calibrator, record, onnx_path, signals, log)
        sidecar = _sidecar(source, decision, caps, profile, record, options.dla_core, started, paths.precision_graph)
        _write_outputs(paths, plan, sidecar, calibrator, record, timing_cache, options.timing_cache)
    return BuildResult(paths.engine, sidecar, decision, caps, _trtexec(source, paths, sidecar, options, rt.api))


def _timing_cache(trt, config, path: str, log):
    """The timing cache to build with: ``path``'s when it is a cache of this GPU and TensorRT, else a fresh one.

    A file that is not a timing cache at all is refused (it is someone's file, never rewritten); a cache of another
    GPU or TensorRT version is reported and replaced by the fresh cache after the build (TensorRT rejects it in
    ``set_timing_cache``, so it was not used).
    """
    blob = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    if cache is None and blob:
        raise EngineBuildError("--timing-cache {}: not a TensorRT timing cache (TensorRT {} rejects it); delete it "
                               "or give another file".format(path, trt.__version__))
    if cache is not None and config.set_timing_cache(cache, False):
        return cache
    if blob:
        log("timing cache {} was made by another GPU or TensorRT version: building with a fresh one, which replaces "
            "it".format(path))
        cache = config.create_timing_cache(b"")
        if cache is not None and config.set_timing_cache(cache, False):
            return cache
    raise EngineBuildError("TensorRT {} could not create a timing cache for {}".format(trt.__version__, path))


def _calibrator(trt, builder, cuda_context, options, contract, onnx_path, input_name, cache_path, calib_batch, log,
                stop):
    """The entropy calibrator and the sidecar's calibration record: the cache at ``cache_path`` is reused only when
    its record says it was made from this ONNX, input shape, preprocessing, TensorRT version and (when images are
    given) these images."""
    from goatpose_edge.engines.calibrator import cache_key, read_record, stale_reason

    height, width = contract.input_size
    key = cache_key(sha256_of(onnx_path), (calib_batch, 3, height, width), contract, trt.__version__,
                    options.calib_sources, options.calib_count)
    reason = stale_reason(cache_path, key)
    reuse = reason is None
    if not reuse and os.path.isfile(cache_path):
        if not options.calib_sources:
            raise EngineBuildError("calibration cache {} cannot be reused: {}; give calibration images "
                                   "(--calib-images DIR or --calib-coco ANN IMGDIR) to calibrate again".format(
                                       cache_path, reason))
        log("calibration cache {} is stale ({}): calibrating again".format(cache_path, reason))
    if reuse:
        made = read_record(cache_path) or {}
        batches, prepared = iter(()), 0  # TensorRT reads the cache and asks for no batch
        record = {"method": "entropy2", "count": made.get("crops"), "prepared": 0, "batch": calib_batch,
                  "cache": cache_path, "reused_cache": True, "source": made.get("source")}
    else:
        crops = calibration.calibration_crops(options.calib_sources, contract, options.calib_count)
        batches, prepared = calibration.batches(crops, calib_batch), len(crops)
        record = {"method": "entropy2", "count": 0, "prepared": prepared, "batch": calib_batch, "cache": cache_path,
                  "reused_cache": False, "source": options.calib_label}
    calibrator = make_entropy_calibrator(trt, cuda_context.cuda, batches, calib_batch, input_name, cache_path,
                                         reuse_cache=reuse, stop=stop)
    calibrator.key = key
    return calibrator, record


def _check_calibration(calibrator, record: dict, log) -> None:
    """After the build: a callback's error is raised here (inside the callback it would have terminated TensorRT 8);
    the record gets the crops TensorRT actually consumed (a batch's wrap-around padding counted once), and names no
    cache when TensorRT stopped before the last batch (that cache is not written: a later build would take it for a
    full calibration)."""
    error = calibrator.error
    if isinstance(error, KeyboardInterrupt):
        raise error
    if error is not None:
        raise EngineBuildError("INT8 calibration failed: {}: {}".format(type(error).__name__, error)) from error
    record["batches"] = calibrator.batches_fed
    if record["reused_cache"]:
        return
    record["count"] = min(calibrator.crops_fed, record["prepared"])
    if calibrator.batches_fed == 0:
        raise EngineBuildError("INT8 calibration consumed no batch: TensorRT asked for none")
    if not calibrator.exhausted:
        log("INT8 calibration: TensorRT stopped after {} of the {} crops; its calibration cache {} is not written "
            "(only a calibration over every crop is kept for reuse)".format(record["count"], record["prepared"],
                                                                           record["cache"]))
        record["cache"] = None


__all__ = ["BatchProfile", "BuildOptions", "BuildResult", "EngineBuildError", "build_engine", "build_inputs",
           "build_outputs", "calibration_cache_path", "fast_precisions", "precision_graph_path", "probe_platform",
           "trtexec_command"]
