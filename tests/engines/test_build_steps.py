"""The steps of ``build_engine`` one at a time (no TensorRT: plain stand-ins for the few TensorRT objects a step
touches), and the library functions ``goatpose build`` calls: the requested batch profile, the trtexec line,
removing an engine with its sidecar. The whole build under the strict fakes is tests/engines/test_trtfake.py."""

import json
import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from goatpose_edge.artefact.sidecar import EngineSidecar, read_sidecar, remove_engine, sidecar_path, write_sidecar
from goatpose_edge.compare import compare_heatmaps, engine_tolerance
from goatpose_edge.engines import builder
from goatpose_edge.engines.builder import BatchProfile, BuildOptions, EngineBuildError
from goatpose_edge.engines.deferred_signals import DeferredSignals
from goatpose_edge.engines.policy import PlatformCaps, PrecisionDecision, PrecisionError
from goatpose_edge.engines.verify import EngineVerifyError, reject_failed
from goatpose_edge.fileio import OutputPathError
from goatpose_edge.runtime.trt_api import BindingsApi, TensorsApi
from goatpose_edge.signals import Terminated, sigterm_as_interrupt
from goatpose_edge.variants import VARIANTS

CONTRACT = VARIANTS["goatpose-bl"].contract  # input [N, 3, 256, 192]
TX2 = PlatformCaps("NVIDIA Tegra X2", (6, 2), "8.2.1.8", fast_fp16=True, fast_int8=False)
RTX = PlatformCaps("NVIDIA GeForce RTX 3080", (8, 6), "10.16.0.72", fast_fp16=True, fast_int8=True, dla_cores=0)
GTX = PlatformCaps("NVIDIA GeForce GTX 1080", (6, 1), "8.2.1.8", fast_fp16=False, fast_int8=True)
TRT11 = PlatformCaps("NVIDIA GeForce RTX 3080", (8, 6), "11.0.0.1", fast_fp16=True, fast_int8=True,
                     precision_flags=False)
FP16 = PrecisionDecision("fp16", "fp16", ["fp16"])
INT8 = PrecisionDecision("int8", "int8", ["int8", "fp16"])


def _source(explicit=False, onnx_path="m.onnx"):
    return builder._Source(onnx_path, CONTRACT, explicit)


class Log(list):
    def __call__(self, line):
        self.append(line)


# goatpose build's batch options -> BatchProfile.requested

@pytest.mark.parametrize("given, profile", [
    ({}, (1, 4, 8)),
    ({"batch": 3}, (3, 3, 3)),
    ({"max_batch": 2}, (1, 2, 2)),  # opt follows a max below 4
    ({"max_batch": 16}, (1, 4, 16)),
    ({"min_batch": 2, "max_batch": 4}, (2, 4, 4)),
    ({"opt_batch": 12}, (1, 12, 12)),  # max follows an opt above 8
    ({"min_batch": 10}, (10, 10, 10)),
    ({"min_batch": 6, "max_batch": 8}, (6, 6, 8)),
])
def test_requested_batch_profile(given, profile):
    requested = BatchProfile.requested(**given)
    assert (requested.min, requested.opt, requested.max) == profile


@pytest.mark.parametrize("other", ["min_batch", "opt_batch", "max_batch"])
def test_batch_fixes_the_profile_alone(other):
    with pytest.raises(EngineBuildError) as info:
        BatchProfile.requested(batch=4, **{other: 4})
    assert str(info.value) == "--batch N fixes the batch: give it or --min/--opt/--max-batch, not both"


def test_requested_profile_is_still_validated():
    with pytest.raises(EngineBuildError, match="1 <= min <= opt <= max, got 1/9/8"):
        BatchProfile.requested(opt_batch=9, max_batch=8)


# _require_calibration

def test_int8_needs_images_a_cache_or_qdq_nodes(tmp_path):
    int8 = BuildOptions(precision="int8")
    with pytest.raises(EngineBuildError, match=r"^INT8 needs calibration images: --calib-images DIR"):
        builder._require_calibration(_source(), int8, str(tmp_path / "e.engine"))
    builder._require_calibration(_source(explicit=True), int8, None)  # a Q/DQ graph
    builder._require_calibration(_source(), BuildOptions(precision="int8", calib_sources=[("a.jpg", None)]), None)
    builder._require_calibration(_source(), BuildOptions(precision="fp16"), None)
    (tmp_path / "e.calib").write_bytes(b"cache")  # the default cache beside -o
    builder._require_calibration(_source(), int8, str(tmp_path / "e.engine"))
    with pytest.raises(EngineBuildError):  # without -o the default cache name is not known yet
        builder._require_calibration(_source(), int8, None)


# _decide_precision

def test_decision_note_is_logged_and_int8_refused_on_the_tx2():
    log = Log()
    decision = builder._decide_precision(BuildOptions(precision="fp16"), GTX, log)
    assert (decision.effective, decision.flags) == ("fp32", [])
    assert log == ["precision: NVIDIA GeForce GTX 1080 (compute 6.1, TensorRT 8.2.1.8) has no fast FP16: built FP32 "
                   "(--force builds FP16 anyway)"]
    assert builder._decide_precision(BuildOptions(precision="fp16"), TX2, log).flags == ["fp16"] and len(log) == 1
    with pytest.raises(PrecisionError, match="INT8 refused"):
        builder._decide_precision(BuildOptions(precision="int8"), TX2, log)


def test_dla_core_must_exist():
    with pytest.raises(EngineBuildError) as info:
        builder._decide_precision(BuildOptions(dla_core=0), TX2, Log())
    assert str(info.value) == "--dla-core 0: NVIDIA Tegra X2 has 0 DLA core(s)"
    xavier = PlatformCaps("Xavier", (7, 2), "8.2.1.8", True, True, dla_cores=2)
    builder._decide_precision(BuildOptions(dla_core=1), xavier, Log())
    with pytest.raises(EngineBuildError, match="--dla-core 2: Xavier has 2 DLA core"):
        builder._decide_precision(BuildOptions(dla_core=2), xavier, Log())


XAVIER = PlatformCaps("Xavier", (7, 2), "8.2.1.8", True, True, dla_cores=2)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_dla_runs_fp16_and_int8(precision):
    decision = builder._decide_precision(BuildOptions(precision=precision, dla_core=0), XAVIER, Log())
    assert decision.effective == precision


def test_dla_refuses_fp32():
    """DLA has no FP32 layers: with GPU fallback the whole network would run on the GPU, unsaid."""
    with pytest.raises(EngineBuildError) as info:
        builder._decide_precision(BuildOptions(precision="fp32", dla_core=1), XAVIER, Log())
    assert str(info.value) == ("--dla-core 1: DLA runs FP16 and INT8 layers only, an FP32 engine would run wholly on "
                               "the GPU: build with --precision fp16 or int8")


def test_dla_needs_one_fixed_batch():
    with pytest.raises(EngineBuildError) as info:
        builder._built_profile(BatchProfile(1, 4, 8), 0, "m.onnx", Log(), dla_core=0)
    assert str(info.value) == ("--dla-core 0: DLA runs one fixed batch, not the profile 1..8 (the whole network would "
                               "run on the GPU): give --batch N")
    assert builder._built_profile(BatchProfile(4, 4, 4), 0, "m.onnx", Log(), dla_core=0) == BatchProfile(4, 4, 4)
    # an ONNX exported with a fixed batch fixes the profile too
    assert builder._built_profile(BatchProfile(1, 4, 8), 2, "m_b2.onnx", Log(), dla_core=0) == BatchProfile(2, 2, 2)


# _precision_graph: TensorRT >= 11 takes the precision from the graph

def test_graph_is_the_onnx_where_builder_flags_exist(tmp_path):
    folder = str(tmp_path)
    for caps, decision, explicit in [(TX2, FP16, False), (RTX, INT8, False), (TRT11, INT8, True)]:
        assert builder._precision_graph(_source(explicit), decision, caps, BuildOptions(), folder) == "m.onnx"
    fp32 = PrecisionDecision("fp32", "fp32", [])
    assert builder._precision_graph(_source(), fp32, TRT11, BuildOptions(), folder) == "m.onnx"
    assert os.listdir(folder) == []


def test_trt11_fp16_writes_an_fp16_copy(tmp_path):
    pytest.importorskip("onnxconverter_common", reason="the FP16 copy needs onnxconverter-common")
    import onnx

    from tests.helpers import stand_in_pose_onnx

    onnx_path = stand_in_pose_onnx(str(tmp_path / "m.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])
    path = builder._precision_graph(_source(onnx_path=onnx_path), FP16, TRT11, BuildOptions(), str(tmp_path))
    assert path == str(tmp_path / "fp16.onnx")
    weights = onnx.load(path).graph.initializer
    assert {w.data_type for w in weights} == {onnx.TensorProto.FLOAT16}


# _built_profile

def test_a_static_batch_replaces_the_profile():
    log = Log()
    profile = builder._built_profile(BatchProfile(1, 4, 8), 3, "m_b3.onnx", log)
    assert profile == BatchProfile(3, 3, 3)
    assert log == ["m_b3.onnx has a static batch of 3: profile 1..8 replaced by it"]
    requested = BatchProfile(3, 3, 3)
    assert builder._built_profile(requested, 3, "m_b3.onnx", log) is requested and len(log) == 1
    assert builder._built_profile(BatchProfile(1, 4, 8), 0, "m.onnx", log) == BatchProfile(1, 4, 8)
    assert len(log) == 1


# _output_paths

def test_default_engine_name_and_calibration_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    onnx_path = str(tmp_path / "m.onnx")
    open(onnx_path, "wb").close()
    paths = builder._output_paths(None, _source(onnx_path=onnx_path), INT8, BatchProfile(1, 4, 8), RTX,
                                  BuildOptions(precision="int8"))
    engine = os.path.join("engines", "goatpose-bl_256x192_int8_b1-8_trt10.16.0.72_geforce-rtx-3080.engine")
    assert (paths.engine, paths.calib_cache, paths.calibrated) == (engine, engine[:-len(".engine")] + ".calib", True)
    given = builder._output_paths("e.engine", _source(onnx_path=onnx_path), INT8, BatchProfile(), RTX,
                                  BuildOptions(precision="int8", calib_cache="my.calib"))
    assert (given.engine, given.calib_cache) == ("e.engine", "my.calib")
    for explicit, caps in [(True, RTX), (False, TRT11)]:  # Q/DQ nodes: no entropy calibration, no cache
        assert not builder._output_paths("e.engine", _source(explicit, onnx_path), INT8, BatchProfile(), caps,
                                         BuildOptions()).calibrated


def test_outputs_are_checked_against_the_onnx(tmp_path):
    onnx_path = str(tmp_path / "m.onnx")
    open(onnx_path, "wb").close()
    with pytest.raises(OutputPathError, match="refusing to write the calibration cache of the engine .*m.onnx: it is "
                                              "the input MODEL.onnx"):
        builder._output_paths(str(tmp_path / "e.engine"), _source(onnx_path=onnx_path), INT8, BatchProfile(), RTX,
                              BuildOptions(calib_cache=onnx_path))


# _configure, _qdq_record, _configure_precision, _configure_dla with stand-ins for the TensorRT objects

class Config:
    def __init__(self):
        self.flags, self.profiles, self.int8_calibrator = [], [], None

    def set_flag(self, flag):
        self.flags.append(flag)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1


class Profile:
    def set_shape(self, name, *shapes):
        self.name, self.shapes = name, shapes


def _rt():
    trt = SimpleNamespace(BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK"),
                          DeviceType=SimpleNamespace(DLA="DLA"), __version__="8.2.1.8")
    api = SimpleNamespace(set_workspace=lambda config, size: setattr(config, "workspace", size))
    builder_ = SimpleNamespace(create_builder_config=Config, create_optimization_profile=Profile)
    return builder._TensorRT(trt, api, None, None, builder_)


PARSED = builder._Parsed(network=None, parser=None, input=SimpleNamespace(name="input"), static_batch=0)


def test_a_refused_optimisation_profile_is_one_line():
    """``add_optimization_profile`` returns the profile's index, -1 when TensorRT finds it invalid."""
    rt = _rt()

    class Refusing(Config):
        def add_optimization_profile(self, profile):
            return -1

    rt.builder.create_builder_config = Refusing
    with pytest.raises(EngineBuildError) as info:
        builder._configure(rt, PARSED, BatchProfile(1, 4, 8), 512, CONTRACT.input_size)
    assert str(info.value) == ("TensorRT 8.2.1.8 refused the optimisation profile of input 'input': min [1, 3, 256, "
                               "192] opt [4, 3, 256, 192] max [8, 3, 256, 192] (its log above says why)")


def test_configure_sets_workspace_and_the_batch_profile():
    config = builder._configure(_rt(), PARSED, BatchProfile(1, 4, 8), 512, CONTRACT.input_size)
    assert config.workspace == 512 << 20
    profile, = config.profiles
    assert profile.name == "input"
    assert profile.shapes == ((1, 3, 256, 192), (4, 3, 256, 192), (8, 3, 256, 192))


@pytest.mark.parametrize("caps, decision, explicit, label, record", [
    (TX2, FP16, False, "", None),
    (RTX, INT8, True, "", {"method": "qdq", "source": "m.onnx"}),
    (TRT11, INT8, False, "coco.json", {"method": "qdq", "source": "coco.json", "made_at_build": True}),
    (TRT11, INT8, True, "", {"method": "qdq", "source": "m.onnx", "made_at_build": False}),
    (TRT11, FP16, False, "coco.json", None),
])
def test_qdq_calibration_record(caps, decision, explicit, label, record):
    assert builder._qdq_record(_source(explicit), decision, caps, BuildOptions(calib_label=label)) == record


@pytest.mark.parametrize("caps, decision, flags", [
    (TX2, FP16, ["FP16"]), (RTX, INT8, ["FP16", "INT8"]), (TRT11, INT8, []),
    (GTX, PrecisionDecision("fp16", "fp32", []), []),
])
def test_precision_flags_without_a_calibrator(caps, decision, flags):
    """Builder flags where TensorRT has them (FP16 first, as before); a Q/DQ graph needs no calibrator."""
    config = Config()
    paths = builder._Paths("e.engine", "e.calib", calibrated=False)
    calibrator, record = builder._configure_precision(_rt(), config, PARSED, _source(explicit=True), decision, caps,
                                                      BuildOptions(), paths, Log())
    assert config.flags == flags and calibrator is None and config.int8_calibrator is None
    assert (record is not None) == ("int8" in decision.flags)


def test_dla_core_with_gpu_fallback():
    config = Config()
    builder._configure_dla(_rt().trt, config, None)
    assert config.flags == [] and not hasattr(config, "DLA_core")
    builder._configure_dla(_rt().trt, config, 1)
    assert (config.default_device_type, config.DLA_core, config.flags) == ("DLA", 1, ["GPU_FALLBACK"])


# _build_plan

class Calibrator:
    """The calibrator after a build that fed it every batch (engines.calibrator's own rules: tests/engines/
    test_trtfake.py)."""

    error, batches_fed, crops_fed, exhausted, new_cache, key = None, 2, 12, True, b"scales", {"k": 1}

    def __init__(self):
        self.freed = 0

    def free(self):
        self.freed += 1

    def fresh_cache(self):
        return self.new_cache


def _builds(plan=None, raises=None):
    def build(network, config):
        if raises:
            raise raises
        return plan

    rt = _rt()
    rt.builder.build_serialized_network = build
    return rt


def test_no_plan_is_one_line():
    with pytest.raises(EngineBuildError) as info:
        builder._build_plan(_builds(None), PARSED, Config(), None, None, "m.onnx")
    assert str(info.value) == "TensorRT could not build an engine from m.onnx (its log above says why)"


def test_the_calibrator_is_freed_and_its_count_recorded():
    calibrator, record = Calibrator(), {"prepared": 10, "reused_cache": False, "cache": "e.calib"}
    log = Log()
    assert builder._build_plan(_builds(b"plan"), PARSED, Config(), calibrator, record, "m.onnx", log=log) == b"plan"
    assert calibrator.freed == 1 and log == []
    assert record == {"prepared": 10, "reused_cache": False, "cache": "e.calib", "batches": 2, "count": 10}
    failing = Calibrator()
    with pytest.raises(MemoryError):
        builder._build_plan(_builds(raises=MemoryError()), PARSED, Config(), failing, dict(record), "m.onnx")
    assert failing.freed == 1


def test_a_calibration_tensorrt_ended_early_names_no_cache():
    """TensorRT stopped asking before the last batch: the engine is built, but no cache a later build would reuse
    as a full calibration."""
    calibrator, record = Calibrator(), {"prepared": 20, "reused_cache": False, "cache": "e.calib"}
    calibrator.exhausted = False
    log = Log()
    assert builder._build_plan(_builds(b"plan"), PARSED, Config(), calibrator, record, "m.onnx", log=log) == b"plan"
    assert record == {"prepared": 20, "reused_cache": False, "cache": None, "batches": 2, "count": 12}
    assert log == ["INT8 calibration: TensorRT stopped after 12 of the 20 crops; its calibration cache e.calib is not "
                   "written (only a calibration over every crop is kept for reuse)"]


def test_a_calibration_error_is_raised_after_the_build():
    calibrator = Calibrator()
    calibrator.error = ValueError("crop 3 is empty")
    with pytest.raises(EngineBuildError, match="^INT8 calibration failed: ValueError: crop 3 is empty$"):
        builder._build_plan(_builds(b"plan"), PARSED, Config(), calibrator, {"reused_cache": False,
                                                                              "prepared": 4}, "m.onnx")
    assert calibrator.freed == 1


# Ctrl-C and SIGTERM while TensorRT builds (engines.deferred_signals); the whole build: tests/engines/test_trtfake.py

@pytest.fixture
def handlers():
    """SIGINT raising KeyboardInterrupt (Python's default) and SIGTERM at SIG_DFL, both restored afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _builds_while(signum):
    """A build during which ``signum`` arrives."""
    def build(network, config):
        os.kill(os.getpid(), signum)
        return b"plan"

    rt = _rt()
    rt.builder.build_serialized_network = build
    return rt


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_is_recorded_during_the_block_and_raised_as_it_ends(handlers, signum, raised):
    previous = signal.getsignal(signum)
    with pytest.raises(raised):
        with DeferredSignals() as signals:
            os.kill(os.getpid(), signum)
            assert signals.received == [signum] and signals.pending()
    assert signal.getsignal(signum) is previous


def test_sigterm_as_interrupt_is_delivered_through_its_handler(handlers):
    """Under ``goatpose``'s main: Terminated, and its handler ignores later SIGTERMs while the stop unwinds."""
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            with DeferredSignals():
                os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_ignored_signal_stays_ignored(handlers):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with DeferredSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
    assert not signals.pending() and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


def test_a_signal_during_the_build_is_raised_before_anything_else(handlers):
    """The calibrator is freed, its error and counts are not looked at: the stop comes first."""
    calibrator = Calibrator()
    calibrator.error = ValueError("not this one")
    record = {"reused_cache": False, "prepared": 12}
    with pytest.raises(KeyboardInterrupt):
        builder._build_plan(_builds_while(signal.SIGINT), PARSED, Config(), calibrator, record, "m.onnx")
    assert calibrator.freed == 1 and record == {"reused_cache": False, "prepared": 12}


# _sidecar, _write_outputs, _trtexec

@pytest.fixture
def onnx_file(tmp_path):
    from tests.helpers import stand_in_pose_onnx

    pytest.importorskip("onnx")
    return stand_in_pose_onnx(str(tmp_path / "m.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])


def test_sidecar_records_the_build(onnx_file):
    from goatpose_edge.artefact.sidecar import sha256_of

    record = {"method": "qdq", "source": onnx_file}
    sidecar = builder._sidecar(_source(True, onnx_file), INT8, RTX, BatchProfile(1, 2, 4), record, None, 0.0)
    assert (sidecar.requested_precision, sidecar.effective_precision, sidecar.builder_flags) == \
        ("int8", "int8", ["int8", "fp16"])
    assert (sidecar.tensorrt_version, sidecar.gpu_name, sidecar.compute_capability) == \
        ("10.16.0.72", "NVIDIA GeForce RTX 3080", [8, 6])
    assert sidecar.batch_profile == {"min": 1, "opt": 2, "max": 4} and sidecar.calibration is record
    assert sidecar.onnx_sha256 == sha256_of(onnx_file) and sidecar.model_contract == CONTRACT
    assert sidecar.build_seconds > 1e6  # seconds since the `started` given (the epoch here)


def _a_sidecar(**changes):
    values = dict(contract=CONTRACT.to_dict(), requested_precision="int8", effective_precision="int8",
                  builder_flags=["int8", "fp16"], tensorrt_version="8.2.1.8", gpu_name="NVIDIA GeForce RTX 3080",
                  compute_capability=[8, 6], batch_profile={"min": 1, "opt": 4, "max": 8}, onnx_path="m.onnx",
                  onnx_sha256="0" * 64, calibration={"method": "entropy2", "cache": "e.calib", "reused_cache": False})
    values.update(changes)
    return EngineSidecar(**values)


def test_write_outputs(tmp_path):
    engine = str(tmp_path / "e.engine")
    paths = builder._Paths(engine, str(tmp_path / "e.calib"), calibrated=True)
    record = {"method": "entropy2", "reused_cache": False}
    timing = SimpleNamespace(serialize=lambda: b"timings")
    builder._write_outputs(paths, b"plan", _a_sidecar(), Calibrator(), record, timing, str(tmp_path / "t.cache"))
    assert sorted(os.listdir(str(tmp_path))) == ["e.calib", "e.calib.json", "e.engine", "e.json", "t.cache"]
    assert open(engine, "rb").read() == b"plan" and read_sidecar(engine) == _a_sidecar()
    assert open(str(tmp_path / "e.calib"), "rb").read() == b"scales"
    assert open(str(tmp_path / "t.cache"), "rb").read() == b"timings"


def test_without_a_fresh_calibration_cache_none_is_written(tmp_path):
    """A reused cache, or a calibration cut short (engines.calibrator's ``fresh_cache()`` is None)."""
    paths = builder._Paths(str(tmp_path / "e.engine"), str(tmp_path / "e.calib"), calibrated=True)
    calibrator = Calibrator()
    calibrator.fresh_cache = lambda: None
    builder._write_outputs(paths, b"plan", _a_sidecar(), calibrator, {"reused_cache": True}, None, None)
    assert sorted(os.listdir(str(tmp_path))) == ["e.engine", "e.json"]


@pytest.mark.parametrize("api, workspace", [(BindingsApi, "--workspace=256"),
                                            (TensorsApi, "--memPoolSize=workspace:256M")])
def test_trtexec_line_of_the_build(api, workspace):
    paths = builder._Paths("e.engine", "e.calib", calibrated=True)
    options = BuildOptions(workspace_mib=256, timing_cache="t.cache")
    line = builder._trtexec(_source(), paths, _a_sidecar(), options, api(None))
    assert line == ("trtexec --onnx=m.onnx --saveEngine=e.engine --int8 --fp16 --calib=e.calib "
                    "--minShapes=input:1x3x256x192 --optShapes=input:4x3x256x192 --maxShapes=input:8x3x256x192 "
                    "{} --timingCacheFile=t.cache".format(workspace))


# TensorRT >= 11: no precision flags, the precision is in the graph parsed, which is kept beside the engine

def test_trt11_keeps_the_precision_graph_beside_the_engine(tmp_path):
    onnx_path, graph = str(tmp_path / "m.onnx"), str(tmp_path / "build" / "fp16.onnx")
    open(onnx_path, "wb").close()
    paths = builder._output_paths(str(tmp_path / "e.engine"), _source(onnx_path=onnx_path), FP16, BatchProfile(),
                                  TRT11, BuildOptions(), graph)
    assert (paths.graph, paths.precision_graph) == (graph, str(tmp_path / "e.fp16.onnx"))
    same = builder._output_paths(str(tmp_path / "e.engine"), _source(onnx_path=onnx_path), FP16, BatchProfile(), RTX,
                                 BuildOptions(), onnx_path)
    assert (same.graph, same.precision_graph) == (onnx_path, None)
    (tmp_path / "build").mkdir()
    open(graph, "wb").write(b"fp16 graph")
    builder._write_outputs(paths, b"plan", _a_sidecar(precision_graph=paths.precision_graph), None, None, None, None)
    assert sorted(os.listdir(str(tmp_path))) == ["build", "e.engine", "e.fp16.onnx", "e.json", "m.onnx"]
    assert open(str(tmp_path / "e.fp16.onnx"), "rb").read() == b"fp16 graph"


def test_trt11_sidecar_and_trtexec_name_the_graph_and_no_precision_flag(onnx_file):
    """trtexec 11 has no --fp16/--int8 (networks are strongly typed): the line builds the kept FP16 graph as is."""
    sidecar = builder._sidecar(_source(False, onnx_file), FP16, TRT11, BatchProfile(1, 2, 4), None, None, 0.0,
                               "e.fp16.onnx")
    assert (sidecar.effective_precision, sidecar.builder_flags, sidecar.precision_graph) == ("fp16", [], "e.fp16.onnx")
    assert sidecar.onnx_path == onnx_file  # what it was made from
    paths = builder._Paths("e.engine", "e.calib", False, "folder/fp16.onnx", "e.fp16.onnx")
    line = builder._trtexec(_source(False, onnx_file), paths, sidecar, BuildOptions(workspace_mib=256), TensorsApi(None))
    assert line == ("trtexec --onnx=e.fp16.onnx --saveEngine=e.engine --minShapes=input:1x3x256x192 "
                    "--optShapes=input:2x3x256x192 --maxShapes=input:4x3x256x192 --memPoolSize=workspace:256M")


# Removing a failed engine with its sidecar

def test_remove_engine_takes_the_sidecar_along(tmp_path):
    engine = str(tmp_path / "e.engine")
    open(engine, "wb").close()
    write_sidecar(engine, _a_sidecar())
    (tmp_path / "e.calib").write_bytes(b"kept")
    assert remove_engine(engine) == [engine, sidecar_path(engine)]
    assert os.listdir(str(tmp_path)) == ["e.calib"]
    assert remove_engine(engine) == []  # nothing left to remove is no error


def test_a_failed_check_removes_the_engine(tmp_path):
    engine = str(tmp_path / "e.engine")
    open(engine, "wb").close()
    write_sidecar(engine, _a_sidecar())
    reference = np.zeros((1, 17, 8, 6), np.float32)
    reference[:, :, 2, 2] = 1.0
    passed = compare_heatmaps("verify fp16 engine vs onnxruntime FP32 on 1 crops", reference, reference,
                              engine_tolerance("fp16"), stride=4)
    reject_failed(passed, engine)
    assert sorted(os.listdir(str(tmp_path))) == ["e.engine", "e.json"]
    failed = compare_heatmaps("verify fp16 engine vs onnxruntime FP32 on 1 crops", reference, reference * 1.5,
                              engine_tolerance("fp16"), stride=4)
    with pytest.raises(EngineVerifyError) as info:  # an FP16 build: no calibration cache to speak of
        reject_failed(failed, engine)
    assert str(info.value) == "{}; {} and its sidecar were removed".format(failed.line(), engine)
    assert os.listdir(str(tmp_path)) == []
    assert json.loads(json.dumps(failed.to_dict()))["ok"] is False


def test_a_failed_check_names_what_the_build_keeps(tmp_path):
    """An INT8 build's calibration cache and a TensorRT >= 11 precision graph stay (named); a cache the sidecar
    names but that is not there is not mentioned."""
    engine, cache, graph = (str(tmp_path / name) for name in ("e.engine", "e.calib", "e.fp16.onnx"))
    reference = np.zeros((1, 17, 8, 6), np.float32)
    reference[:, :, 2, 2] = 1.0
    failed = compare_heatmaps("verify int8 engine vs onnxruntime FP32 on 1 crops", reference, reference * 1.5,
                              engine_tolerance("int8"), stride=4)
    for path in (engine, cache, graph):
        open(path, "wb").close()
    write_sidecar(engine, _a_sidecar())
    with pytest.raises(EngineVerifyError) as info:
        reject_failed(failed, engine, cache, graph)
    assert str(info.value) == ("{}; {} and its sidecar were removed; its calibration cache {} is kept (a rebuild "
                               "reuses it); its precision graph {} is kept".format(failed.line(), engine, cache, graph))
    assert sorted(os.listdir(str(tmp_path))) == ["e.calib", "e.fp16.onnx"]
    os.remove(cache)
    open(engine, "wb").close()
    with pytest.raises(EngineVerifyError) as info:
        reject_failed(failed, engine, cache)
    assert str(info.value) == "{}; {} and its sidecar were removed".format(failed.line(), engine)
