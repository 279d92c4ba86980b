"""``goatpose build``: an exported ONNX file to a TensorRT engine + sidecar, on TensorRT 8.0/8.2 (TX2) and 10.x.

Order: read the contract from the ONNX; probe the platform; decide the precision (``policy``); parse (the parser's
errors listed); configure (workspace, precision flags, INT8 calibrator and cache, optimisation profile, timing cache,
DLA); build the serialized plan; write plan, sidecar and timing cache atomically. Nothing is left behind on failure.
TensorRT >= 11 has no FP16/INT8 builder flags: there FP16 takes an FP16 copy of the graph and INT8 the Q/DQ graph
of ``engines.qdq`` (explicit precision).
"""

import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from goatpose_edge.engines import calibration
from goatpose_edge.engines.calibrator import make_entropy_calibrator
from goatpose_edge.engines.policy import PlatformCaps, PrecisionDecision, choose_precision
from goatpose_edge.artefact.sidecar import (ENGINE_SUFFIXES, EngineSidecar, default_engine_path, sha256_of,
                                           sidecar_path, utc_now, write_sidecar)
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import Output, atomic_output, check_io

TIMING_CACHE_SUFFIXES = (".cache", ".timing")
from goatpose_edge.engines.qdq import QDQ_METADATA_KEY
from goatpose_edge.artefact.onnx_meta import read_complexity, read_contract, read_metadata
from goatpose_edge.runtime.cuda import CudaContext
from goatpose_edge.runtime.trt_api import import_tensorrt, make_logger, trt_api


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


@dataclass
class BuildOptions:
    precision: str = "fp16"
    profile: BatchProfile = field(default_factory=BatchProfile)
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


@dataclass
class BuildResult:
    engine_path: str
    sidecar: EngineSidecar
    decision: PrecisionDecision
    caps: PlatformCaps


def calibration_cache_path(engine_path: str) -> str:
    """Where an INT8 build keeps its calibration cache by default: ``<engine name>.calib`` beside the engine."""
    return os.path.splitext(engine_path)[0] + ".calib"


def build_outputs(engine_path: str, calibrated: bool, timing_cache: Optional[str] = None,
                  calib_cache: Optional[str] = None, option: str = "the engine", create_parent: bool = True
                  ) -> List[Output]:
    """Every file a build writes: the engine, its sidecar and, for an INT8 calibration, the calibration cache and its
    record (``calibrated``), and the timing cache. The CLI checks them before anything starts (``-o`` given) and
    ``build_engine`` again once the default name is known."""
    from goatpose_edge.engines.calibrator import calibration_record_path

    def out(path, what, suffixes=()):
        return Output(path, what, suffixes, create_parent=create_parent)

    outputs = [out(engine_path, option, ENGINE_SUFFIXES), out(sidecar_path(engine_path), "the sidecar of " + option)]
    if calibrated:
        cache = calib_cache or calibration_cache_path(engine_path)
        outputs += [out(cache, "the calibration cache of " + option),
                    out(calibration_record_path(cache), "the calibration record of " + option)]
    if timing_cache:
        outputs.append(out(timing_cache, "--timing-cache", TIMING_CACHE_SUFFIXES))
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
                    dla_core: Optional[int] = None, calib_cache: Optional[str] = None) -> str:
    """The trtexec line that builds the same engine (for users who want TensorRT's own tool)."""
    height, width = input_size

    def shape(n):
        return "input:{}x3x{}x{}".format(n, height, width)

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


def _parse(trt, parser, onnx_path: str) -> None:
    with open(onnx_path, "rb") as f:
        ok = parser.parse(f.read())
    if not ok:
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise EngineBuildError("TensorRT {} could not parse {}: {}".format(
            trt.__version__, onnx_path, "; ".join(errors[:5]) or "no parser message"))


def _explicit_precision_onnx(onnx_path: str, decision: PrecisionDecision, options: BuildOptions, contract,
                             folder: str) -> str:
    """TensorRT >= 11: the graph itself carries the precision (FP16 weights, or Q/DQ nodes for INT8)."""
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


def build_engine(onnx_path: str, output: Optional[str] = None, options: Optional[BuildOptions] = None,
                 log=lambda line: None) -> BuildResult:
    options = options or BuildOptions()
    contract = read_contract(onnx_path)
    explicit = QDQ_METADATA_KEY in read_metadata(onnx_path)  # a Q/DQ graph from `goatpose quantize`
    known_cache = options.calib_cache or (calibration_cache_path(output) if output else None)
    if options.precision == "int8" and not explicit and not options.calib_sources and not (
            known_cache and os.path.isfile(known_cache)):
        raise EngineBuildError("INT8 needs calibration images: --calib-images DIR or --calib-coco ANN IMGDIR "
                               "(or a Q/DQ graph from `goatpose quantize`)")
    trt = import_tensorrt()
    api = trt_api(trt)
    cuda_context = CudaContext()
    logger = make_logger(trt, options.verbose)
    started = time.time()
    with cuda_context.active():
        builder = trt.Builder(logger)
        caps = probe_platform(trt, builder, cuda_context)
        decision = choose_precision(options.precision, caps, options.force)
        if decision.note:
            log("precision: " + decision.note)
        if options.dla_core is not None and not 0 <= options.dla_core < caps.dla_cores:
            raise EngineBuildError("--dla-core {}: {} has {} DLA core(s)".format(
                options.dla_core, caps.gpu_name, caps.dla_cores))
        profile = options.profile
        with tempfile.TemporaryDirectory(prefix="goatpose-build-") as tmp:
            graph = onnx_path if caps.precision_flags or explicit else _explicit_precision_onnx(
                onnx_path, decision, options, contract, tmp)
            network = builder.create_network(api.network_flags())
            parser = trt.OnnxParser(network, logger)
            _parse(trt, parser, graph)
            input_tensor = network.get_input(0)
            height, width = contract.input_size
            static = int(input_tensor.shape[0])
            if static > 0 and (profile.min, profile.max) != (static, static):  # exported with --batch N
                log("{} has a static batch of {}: profile {}..{} replaced by it".format(
                    onnx_path, static, profile.min, profile.max))
                profile = BatchProfile(static, static, static)
            output = output or default_engine_path(contract, decision.effective, profile.as_dict(),
                                                   caps.tensorrt_version, caps.gpu_name)
            calib_cache = options.calib_cache or calibration_cache_path(output)
            calibrated = "int8" in decision.flags and not explicit and caps.precision_flags
            check_io(build_outputs(output, calibrated, options.timing_cache, calib_cache),
                     build_inputs(onnx_path, options))
            config = builder.create_builder_config()
            api.set_workspace(config, options.workspace_mib << 20)
            trt_profile = builder.create_optimization_profile()
            trt_profile.set_shape(input_tensor.name, (profile.min, 3, height, width), (profile.opt, 3, height, width),
                                  (profile.max, 3, height, width))
            config.add_optimization_profile(trt_profile)
            timing_cache = _timing_cache(trt, config, options.timing_cache, log) if options.timing_cache else None
            calibrator, calib_record = None, None
            if "int8" in decision.flags and not caps.precision_flags:  # TensorRT >= 11: the Q/DQ graph made above
                calib_record = {"method": "qdq", "source": options.calib_label or onnx_path,
                                "made_at_build": not explicit}
            if caps.precision_flags:
                if "fp16" in decision.flags:
                    config.set_flag(trt.BuilderFlag.FP16)
                if "int8" in decision.flags:
                    config.set_flag(trt.BuilderFlag.INT8)
                if "int8" in decision.flags and explicit:
                    calib_record = {"method": "qdq", "source": onnx_path}
                elif "int8" in decision.flags:
                    calib_batch = static if static > 0 else options.calib_batch
                    calibrator, calib_record = _calibrator(trt, builder, cuda_context, options, contract, onnx_path,
                                                           input_tensor.name, calib_cache, calib_batch, log)
                    config.int8_calibrator = calibrator
                    # TensorRT calibrates at the calibration profile's kOPT shape: its own, of exactly the batch fed
                    calib_profile = builder.create_optimization_profile()
                    calib_shape = (calib_batch, 3, height, width)
                    calib_profile.set_shape(input_tensor.name, calib_shape, calib_shape, calib_shape)
                    if config.set_calibration_profile(calib_profile) is False:
                        raise EngineBuildError("TensorRT {} refused the calibration profile {}".format(
                            trt.__version__, list(calib_shape)))
            if options.dla_core is not None:
                config.default_device_type = trt.DeviceType.DLA
                config.DLA_core = options.dla_core
                config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
            log("building {} engine for {} (batch {}..{}) on {} ...".format(
                decision.effective.upper(), contract.name, profile.min, profile.max, caps.describe()))
            try:
                plan = builder.build_serialized_network(network, config)
            finally:
                if calibrator is not None:
                    calibrator.free()
            if calibrator is not None:
                _check_calibration(calibrator, calib_record)
            if plan is None:
                raise EngineBuildError("TensorRT could not build an engine from {} (its log above says why)".format(
                    onnx_path))
            sidecar = EngineSidecar(
                contract=contract.to_dict(), requested_precision=decision.requested,
                effective_precision=decision.effective, builder_flags=list(decision.flags),
                tensorrt_version=caps.tensorrt_version, gpu_name=caps.gpu_name,
                compute_capability=list(caps.compute_capability), batch_profile=profile.as_dict(),
                onnx_path=onnx_path, onnx_sha256=sha256_of(onnx_path), calibration=calib_record,
                dla_core=options.dla_core, build_seconds=round(time.time() - started, 1), built_at=utc_now(),
                precision_note=decision.note, complexity=read_complexity(onnx_path))
            with atomic_output(output) as tmp_path:
                with open(tmp_path, "wb") as f:
                    f.write(plan)
                write_sidecar(output, sidecar)
            if calibrator is not None and calibrator.new_cache is not None and not calib_record["reused_cache"]:
                from goatpose_edge.engines.calibrator import write_cache

                write_cache(calib_cache, calibrator.new_cache, calibrator.key, calib_record)
            if timing_cache is not None:
                with atomic_output(options.timing_cache) as tmp_path:
                    with open(tmp_path, "wb") as f:
                        f.write(timing_cache.serialize())
    return BuildResult(output, sidecar, decision, caps)


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


def _calibrator(trt, builder, cuda_context, options, contract, onnx_path, input_name, cache_path, calib_batch, log):
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
                                         reuse_cache=reuse)
    calibrator.key = key
    return calibrator, record


def _check_calibration(calibrator, record: dict) -> None:
    """After the build: a callback's error is raised here (inside the callback it would have terminated TensorRT 8);
    the record gets the crops TensorRT actually consumed (a batch's wrap-around padding counted once)."""
    error = calibrator.error
    if isinstance(error, KeyboardInterrupt):
        raise error
    if error is not None:
        raise EngineBuildError("INT8 calibration failed: {}: {}".format(type(error).__name__, error)) from error
    record["batches"] = calibrator.batches_fed
    if record["reused_cache"]:
        return
    record["count"] = min(calibrator.crops_fed, record["prepared"])
    if not record["reused_cache"] and calibrator.batches_fed == 0:
        raise EngineBuildError("INT8 calibration consumed no batch: TensorRT asked for none")


__all__ = ["BatchProfile", "BuildOptions", "BuildResult", "EngineBuildError", "build_engine", "build_inputs",
           "build_outputs", "calibration_cache_path", "fast_precisions", "probe_platform", "trtexec_command"]
