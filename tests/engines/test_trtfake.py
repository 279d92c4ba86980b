"""Builder and runner end to end under strict fakes of TensorRT 8.0.1 / 8.2.1 (TX2) and 10.x (desktop) + pycuda.

The fakes (../shared/tools/trtfake) prove API names, argument counts and call order; their outputs mean nothing, so
these tests assert on our own behaviour (files, sidecars, decisions, errors) and on shapes, never on values.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.variants import VARIANTS
from tests.helpers import REPO_ROOT, SHARED_DATA, stand_in_pose_onnx

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")
GENERATIONS = [("8.0.1", "tx2", "8.0.1.6"), ("8.2.1", "tx2", "8.2.1.8"), ("10.x", "desktop", "10.16.0.72")]

pytestmark = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A one-conv stand-in with GoatPose-BL's I/O and contract: input [batch, 3, 256, 192] -> [batch, 17, 64, 48]."""
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("onnx") / "tiny.onnx"),
                              [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])


def fake_env(version, platform, **extra):
    env = dict(os.environ, PYTHONPATH=os.path.join(TRTFAKE, "shim"), TRTFAKE_VERSION=version,
               TRTFAKE_PLATFORM=platform, TRTFAKE_QUIET="1")
    env.update(extra)
    return env


def goatpose(env, *args):
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


#: the runner contract checks, run on an engine in a child pytest (the fake generation is chosen per process)
CONTRACT_TESTS = os.path.join("tests", "runtime", "test_runner_contract.py")


def contract_checks(engine, command, env=None):
    """Run the TensorRT cases of the runner contract checks on ``engine`` with ``command`` (the interpreter, under
    run_with_fake or with the shim); every case must pass, none skip."""
    run = subprocess.run(command + ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "tensorrt", CONTRACT_TESTS],
                         env=dict(env or os.environ, GOATPOSE_CONTRACT_ENGINE=engine), cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b\d+ passed\b", run.stdout) and "skipped" not in run.stdout, run.stdout


@pytest.mark.parametrize("version, platform, full_version", GENERATIONS)
def test_build_then_run_with_strict_fakes(version, platform, full_version, tiny_onnx, tmp_path):
    engine = str(tmp_path / "bl.engine")
    build = subprocess.run(
        [sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform", platform,
         "--strict", "--quiet-trt", "--show", "0", "-m", "goatpose_edge", "build", tiny_onnx, "--min-batch", "1",
         "--opt-batch", "2", "--max-batch", "4", "--timing-cache", str(tmp_path / "timing.cache"), "-o", engine],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    sidecar = json.load(open(str(tmp_path / "bl.json")))
    assert sidecar["tensorrt_version"] == full_version and sidecar["effective_precision"] == "fp16"
    assert sidecar["batch_profile"] == {"min": 1, "opt": 2, "max": 4} and sidecar["contract"]["name"] == "goatpose-bl"
    assert os.path.isfile(str(tmp_path / "timing.cache"))
    contract_checks(engine, [sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version,
                             "--platform", platform, "--strict", "--quiet-trt", "--show", "0"])


def test_old_pycuda_without_primary_context_retain(tiny_onnx, tmp_path):
    env = fake_env("8.2.1", "tx2", TRTFAKE_PYCUDA_VERSION="2019.1.2")
    engine = str(tmp_path / "e.engine")
    assert goatpose(env, "build", tiny_onnx, "--max-batch", "4", "-o", engine).returncode == 0
    contract_checks(engine, [sys.executable], env)


def test_engine_from_another_tensorrt_is_refused_before_loading(tiny_onnx, tmp_path, coco_persons):
    engine = str(tmp_path / "e.engine")
    assert goatpose(fake_env("8.2.1", "tx2"), "build", tiny_onnx, "-o", engine).returncode == 0
    result = goatpose(fake_env("10.x", "desktop"), "pose", coco_persons[0][0], "--pose", engine, "--detector", "whole")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "goatpose: error: {} was built with TensorRT 8.2.1.8 on NVIDIA Tegra X2 (compute 6.2); this machine has "
        "TensorRT 10.16.0.72 on NVIDIA GeForce RTX 3080 (compute 8.6): engines only run where they were built, "
        "rebuild it here with `goatpose build {}`".format(engine, tiny_onnx))


def test_int8_on_tx2_is_refused_and_leaves_nothing(tiny_onnx, tmp_path):
    folder = os.path.join(SHARED_DATA, "coco_sample")
    result = goatpose(fake_env("8.2.1", "tx2"), "build", tiny_onnx, "--precision", "int8", "--calib-coco",
                      os.path.join(folder, "test_coco.json"), folder, "-o", str(tmp_path / "e.engine"))
    assert result.returncode == 1 and "goatpose: error: INT8 refused: NVIDIA Tegra X2" in result.stderr
    assert os.listdir(str(tmp_path)) == []


def test_int8_calibration_cache_is_written_then_reused(tiny_onnx, tmp_path):
    folder = os.path.join(SHARED_DATA, "coco_sample")
    env = fake_env("8.2.1", "desktop")

    def build(name):
        engine = str(tmp_path / name)
        result = goatpose(env, "build", tiny_onnx, "--precision", "int8", "--max-batch", "4", "--calib-coco",
                          os.path.join(folder, "test_coco.json"), folder, "-o", engine)
        assert result.returncode == 0, result.stderr
        return json.load(open(engine[:-len(".engine")] + ".json"))["calibration"]

    first = build("e0.engine")
    assert (first["method"], first["reused_cache"], first["count"]) == ("entropy2", False, 12)
    assert os.path.isfile(first["cache"])
    os.rename(first["cache"], str(tmp_path / "e1.calib"))  # the second build finds it under its own name
    os.rename(first["cache"] + ".json", str(tmp_path / "e1.calib.json"))  # with the record of what made it
    second = build("e1.engine")
    assert (second["method"], second["reused_cache"]) == ("entropy2", True)


def test_int8_on_tx2_is_refused_before_calibration_images_are_asked_for(tiny_onnx, tmp_path):
    result = goatpose(fake_env("8.2.1", "tx2"), "build", tiny_onnx, "--precision", "int8",
                      "-o", str(tmp_path / "e.engine"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("goatpose: error: INT8 refused: NVIDIA Tegra X2") and "calib" not in result.stderr
    assert os.listdir(str(tmp_path)) == []


def test_int8_without_calibration_images(tiny_onnx, tmp_path):
    result = goatpose(fake_env("8.2.1", "desktop"), "build", tiny_onnx, "--precision", "int8",
                      "-o", str(tmp_path / "e.engine"))
    assert result.returncode == 1 and "INT8 needs calibration images" in result.stderr


def test_parser_errors_are_shown_and_no_engine_is_left(tmp_path):
    node = helper.make_node("NonZero", ["input"], ["heatmaps"], name="nz")
    graph = helper.make_graph([node], "bad", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                             ["batch", 3, 256, 192])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {METADATA_KEY: VARIANTS["goatpose-bl"].contract.to_json()})
    path = str(tmp_path / "bad.onnx")
    onnx.save(model, path)
    (tmp_path / "out").mkdir()
    result = goatpose(fake_env("8.2.1", "tx2", TRTFAKE_ONNX_OPS_STRICT="1"), "build", path,
                      "-o", str(tmp_path / "out" / "e.engine"))
    assert result.returncode == 1 and "goatpose: error: TensorRT 8.2.1.8 could not parse {}: ".format(path) in \
        result.stderr and "NonZero" in result.stderr
    assert os.listdir(str(tmp_path / "out")) == []


def test_without_tensorrt_one_line(tiny_onnx, tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = goatpose(env, "build", tiny_onnx, "-o", str(tmp_path / "e.engine"))
    assert result.returncode == 1
    assert result.stderr.startswith("goatpose: error: TensorRT is not installed here")


def test_timing_cache_that_is_not_a_cache_is_refused_untouched(tiny_onnx, tmp_path):
    """`--timing-cache` naming some other file: one line, the file kept byte for byte, no engine."""
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"my notes, not a timing cache")
    result = goatpose(fake_env("8.2.1", "tx2"), "build", tiny_onnx, "--timing-cache", str(cache), "-o",
                      str(tmp_path / "e.engine"))
    assert result.returncode == 1 and "not a TensorRT timing cache" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and cache.read_bytes() == b"my notes, not a timing cache"
    assert sorted(os.listdir(str(tmp_path))) == ["timing.cache"]


def test_timing_cache_of_another_gpu_is_reported_and_replaced(tiny_onnx, tmp_path):
    cache = str(tmp_path / "timing.cache")
    assert goatpose(fake_env("10.x", "desktop"), "build", tiny_onnx, "--timing-cache", cache, "-o",
                    str(tmp_path / "desktop.engine")).returncode == 0
    desktop_cache = open(cache, "rb").read()
    result = goatpose(fake_env("10.x", "tx2"), "build", tiny_onnx, "--timing-cache", cache, "-o",
                      str(tmp_path / "tx2.engine"))
    assert result.returncode == 0, result.stderr
    assert "was made by another GPU or TensorRT version: building with a fresh one" in result.stdout
    assert open(cache, "rb").read() != desktop_cache  # the fresh cache of this device, not the foreign one
    again = goatpose(fake_env("10.x", "tx2"), "build", tiny_onnx, "--timing-cache", cache, "-o",
                     str(tmp_path / "tx2b.engine"))
    assert again.returncode == 0 and "another GPU" not in again.stdout


COCO_CALIB = ("--calib-coco", os.path.join(SHARED_DATA, "coco_sample", "test_coco.json"),
              os.path.join(SHARED_DATA, "coco_sample"))


def strict_build(version, tmp_path, *args, **env):
    """``goatpose build`` under run_with_fake --strict: any emulated misuse (a subset calibrated, freed cache memory,
    a callback that would terminate TensorRT 8) fails the run; returns (exit status, output, sidecar or None)."""
    engine = str(tmp_path / "e.engine")
    run = subprocess.run([sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform",
                          "desktop", "--strict", "-m", "goatpose_edge.cli", "build"] + list(args) + ["-o", engine],
                         env=dict(os.environ, TRTFAKE_QUIET="1", **env), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    sidecar = str(tmp_path / "e.json")
    return run.returncode, run.stdout, json.load(open(sidecar)) if os.path.isfile(sidecar) else None


@pytest.mark.parametrize("version", ["8.0.1", "8.2.1", "10.x"])
def test_int8_calibration_is_clean_under_the_strict_fakes(version, tiny_onnx, tmp_path):
    """Every crop reaches TensorRT at the calibration profile's shape (8 per batch, the last one wrapped), the 8.0.1
    cache callback returns a live buffer, and the sidecar counts what TensorRT consumed."""
    code, output, sidecar = strict_build(version, tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB)
    assert code == 0, output
    calibration = sidecar["calibration"]
    assert (calibration["count"], calibration["prepared"], calibration["batch"], calibration["batches"]) == \
        (12, 12, 8, 2)


def test_calibration_record_counts_the_crops_tensorrt_consumed(tiny_onnx, tmp_path):
    """TensorRT asked for one batch of two: the engine says so, and that cache is not kept for later builds."""
    code, output, sidecar = strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB,
                                         TRTFAKE_CALIB_MAX_BATCHES="1")
    assert code == 0, output
    assert (sidecar["calibration"]["count"], sidecar["calibration"]["prepared"]) == (8, 12)
    assert sidecar["calibration"]["cache"] is None and sorted(os.listdir(str(tmp_path))) == ["e.engine", "e.json"]
    assert "INT8 calibration: TensorRT stopped after 8 of the 12 crops; its calibration cache {} is not written".format(
        tmp_path / "e.calib") in output


@pytest.mark.parametrize("version", ["8.0.1", "8.2.1", "10.x"])
def test_a_failing_calibration_callback_is_one_line_not_an_abort(version, tiny_onnx, tmp_path):
    """Out of GPU memory inside get_batch: on 8.x an exception escaping the callback would abort (status 134)."""
    code, output, sidecar = strict_build(version, tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB,
                                         TRTFAKE_FAIL="alloc:1")
    assert code == 1 and sidecar is None, output
    assert "goatpose: error: INT8 calibration failed: CudaError: CUDA failed to allocate the calibration batch" \
        in output
    assert os.listdir(str(tmp_path)) == []


def test_stale_calibration_cache_is_rebuilt(tiny_onnx, tmp_path):
    assert strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB)[0] == 0
    code, output, sidecar = strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8")  # no images: reused
    assert code == 0 and sidecar["calibration"]["reused_cache"] is True, output
    changed = str(tmp_path / "tiny.onnx")
    model = onnx.load(tiny_onnx)
    model.doc_string = "exported again"
    onnx.save(model, changed)
    code, output, _ = strict_build("8.2.1", tmp_path, changed, "--precision", "int8")
    assert code == 1 and "cannot be reused: it was made for another ONNX file (sha256 differs)" in output
    code, output, sidecar = strict_build("8.2.1", tmp_path, changed, "--precision", "int8", *COCO_CALIB)
    assert code == 0 and "is stale (it was made for another ONNX file" in output
    assert sidecar["calibration"]["reused_cache"] is False and sidecar["calibration"]["count"] == 12


def test_other_calibration_images_recalibrate(tiny_onnx, tmp_path):
    """A cache made from other images (or another --calib-count) is not silently reused when images are given."""
    assert strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB)[0] == 0
    code, output, sidecar = strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8", *COCO_CALIB,
                                         "--calib-count", "5")
    assert code == 0 and "is stale (it was made for other calibration images or --calib-count)" in output
    assert sidecar["calibration"]["count"] == 5 and sidecar["calibration"]["reused_cache"] is False
    code, output, sidecar = strict_build("8.2.1", tmp_path, tiny_onnx, "--precision", "int8")  # no images: reused
    assert code == 0 and sidecar["calibration"]["reused_cache"] is True
    assert sidecar["calibration"]["count"] == 5 and sidecar["calibration"]["source"] == COCO_CALIB[1]


def _plain_calibrator(monkeypatch, batches, **options):
    """engines.calibrator's calibrator on stand-ins (no TensorRT, no pycuda), with an int as its device pointer."""
    from types import SimpleNamespace

    from goatpose_edge.engines import calibrator as module

    monkeypatch.setattr(module, "cuda_call", lambda what, function, *args: function(*args))  # no pycuda here

    class Base:
        def __init__(self):
            pass

    cuda = SimpleNamespace(mem_alloc=lambda n: SimpleNamespace(free=lambda: None, __int__=lambda: 1),
                           memcpy_htod=lambda dst, src: None)
    trt = SimpleNamespace(__version__="8.2.1.8", IInt8EntropyCalibrator2=Base)
    calibrator = module.make_entropy_calibrator(trt, cuda, batches, 2, "input", "/nonexistent/never-written.calib",
                                                **options)
    calibrator.allocation = 7
    return calibrator


def test_the_calibrator_writes_nothing_itself(monkeypatch):
    """A calibration cut short (a callback failed, Ctrl-C) must leave no cache a later build would reuse: the
    calibrator only keeps what TensorRT hands over; build_engine writes it after a good build."""
    def batches():
        yield np.zeros((2, 3, 4, 4), np.float32)
        raise KeyboardInterrupt  # Ctrl-C while the second batch is prepared

    calibrator = _plain_calibrator(monkeypatch, batches())
    assert calibrator.get_batch(["input"]) == [7] and calibrator.get_batch(["input"]) is None
    assert isinstance(calibrator.error, KeyboardInterrupt)
    calibrator.write_calibration_cache(memoryview(b"scales"))
    assert calibrator.new_cache == b"scales" and calibrator.read_calibration_cache() is None
    assert calibrator.fresh_cache() is None


BATCHES = [np.zeros((2, 3, 4, 4), np.float32)] * 2


def test_a_cache_made_from_every_batch_is_fresh(monkeypatch):
    calibrator = _plain_calibrator(monkeypatch, iter(BATCHES), reuse_cache=False)
    assert [calibrator.get_batch(["input"]) for _ in range(3)] == [[7], [7], None] and calibrator.exhausted
    calibrator.write_calibration_cache(memoryview(b"scales"))
    assert calibrator.fresh_cache() == b"scales"


@pytest.mark.parametrize("fed, options", [
    (1, {"reuse_cache": False}),  # TensorRT asked for one batch of two
    (2, {"reuse_cache": True}),  # the cache read at the start is not written again
])
def test_no_fresh_cache_unless_every_batch_was_fed_to_a_new_calibration(monkeypatch, fed, options):
    calibrator = _plain_calibrator(monkeypatch, iter(BATCHES), **options)
    for _ in range(fed):
        calibrator.get_batch(["input"])
    calibrator.write_calibration_cache(memoryview(b"scales"))
    assert calibrator.new_cache == b"scales" and calibrator.fresh_cache() is None


def test_a_pending_signal_ends_calibration(monkeypatch):
    """``stop()`` (a deferred Ctrl-C or SIGTERM) ends calibration at the next batch; that cache is not fresh."""
    stop = []
    calibrator = _plain_calibrator(monkeypatch, iter(BATCHES), reuse_cache=False, stop=lambda: bool(stop))
    assert calibrator.get_batch(["input"]) == [7]
    stop.append("SIGINT")
    assert calibrator.get_batch(["input"]) is None and calibrator.batches_fed == 1 and calibrator.error is None
    calibrator.write_calibration_cache(memoryview(b"scales"))
    assert not calibrator.exhausted and calibrator.fresh_cache() is None


#: ``goatpose build`` in a child with a signal sent from inside the INT8 calibration (argv: where, signal, build
#: arguments). ``entry``: as the second get_batch starts, before its first bytecode, which is where a signal that
#: arrived while TensorRT's native build held no GIL is raised; ``source``: while the calibration source makes a
#: batch. The fake's callback wrapper lets a BaseException through, but pybind11 turns every Python exception of an
#: override into error_already_set (NVIDIA/TensorRT python/src/infer/pyInt8.cpp, ``pyGetBatch(namesVec)``): the
#: wrapper below does the same, so the fake's 8.x trampolines terminate and its 10.x ones print and swallow it.
SIGNAL_IN_CALIBRATION = """
import atexit, os, signal, sys
import tensorrt

fake = tensorrt._trtfake
callback = fake._callback


def faithful_callback(obj, meth, args, base_name):
    try:
        return callback(obj, meth, args, base_name)
    except fake._CppError:
        raise
    except BaseException as exc:
        raise fake._CppError("pybind11::error_already_set", "%s: %s" % (type(exc).__name__, exc))


fake._callback = faithful_callback
where, signum, args = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3:]
calls = []


def at_entry(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "get_batch" and frame.f_code.co_filename.endswith("calibrator.py"):
        calls.append(frame)
        if len(calls) == 2:
            os.kill(os.getpid(), signum)


if where == "entry":
    atexit.register(lambda: print("get_batch calls:", len(calls)))
    sys.setprofile(at_entry)
else:
    from goatpose_edge.engines import calibration

    batches = calibration.batches

    def signalled(crops, batch_size):
        for index, batch in enumerate(batches(crops, batch_size)):
            if index == 1:
                os.kill(os.getpid(), signum)
            yield batch

    calibration.batches = signalled
from goatpose_edge.cli import main
sys.exit(main(args))
"""


@pytest.mark.parametrize("where", ["entry", "source"])
@pytest.mark.parametrize("signame, status, last_line", [
    ("SIGINT", 130, "goatpose: interrupted"),
    ("SIGTERM", 143, "goatpose: terminated (SIGTERM); nothing half-written was left")])
@pytest.mark.parametrize("version", ["8.2.1", "10.x"])
def test_a_signal_during_calibration_stops_the_build_and_leaves_nothing(version, signame, status, last_line, where,
                                                                       tiny_onnx, tmp_path):
    """Ctrl-C / SIGTERM while TensorRT calibrates: deferred until the build returns, then the usual stop: no abort
    (8.x), no engine built on a cut-short calibration (10.x), no cache, no temporary folder."""
    out, temp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temp.mkdir()
    run = subprocess.run([sys.executable, "-c", SIGNAL_IN_CALIBRATION, where, signame, "build", tiny_onnx,
                          "--precision", "int8"] + list(COCO_CALIB) + ["-o", str(out / "e.engine")],
                         env=fake_env(version, "desktop", TMPDIR=str(temp)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert run.returncode == status, run.stdout + run.stderr
    assert run.stderr.splitlines() == [last_line], run.stderr
    assert os.listdir(str(out)) == [] and os.listdir(str(temp)) == []
    if where == "entry":  # the signalled get_batch ended calibration (12 crops are two batches, then None)
        assert run.stdout.splitlines()[-1] == "get_batch calls: 2", run.stdout
