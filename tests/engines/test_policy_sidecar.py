"""Pure engine logic: precision policy from capability flags, sidecar schema and compatibility, naming, trtexec."""

import json
import os

import pytest

from goatpose_edge.engines.builder import BatchProfile, EngineBuildError, trtexec_command
from goatpose_edge.engines.policy import PlatformCaps, PrecisionError, choose_precision
from goatpose_edge.artefact.sidecar import (EngineMismatchError, EngineSidecar, check_compatible, default_engine_path,
                                           read_sidecar, sha256_of, write_sidecar)
from goatpose_edge.variants import VARIANTS

TX2 = PlatformCaps("NVIDIA Tegra X2", (6, 2), "8.2.1.8", fast_fp16=True, fast_int8=False)
RTX = PlatformCaps("NVIDIA GeForce RTX 3080", (8, 6), "10.3.0.26", fast_fp16=True, fast_int8=True)
GTX = PlatformCaps("NVIDIA GeForce GTX 1080", (6, 1), "8.2.1.8", fast_fp16=False, fast_int8=True)


@pytest.mark.parametrize("caps, requested, force, effective, flags", [
    (TX2, "fp32", False, "fp32", []),
    (TX2, "fp16", False, "fp16", ["fp16"]),
    (TX2, "int8", True, "int8", ["int8", "fp16"]),
    (RTX, "int8", False, "int8", ["int8", "fp16"]),
    (GTX, "fp16", False, "fp32", []),
    (GTX, "fp16", True, "fp16", ["fp16"]),
    (GTX, "int8", False, "int8", ["int8"]),
])
def test_precision_policy(caps, requested, force, effective, flags):
    decision = choose_precision(requested, caps, force)
    assert (decision.effective, decision.flags) == (effective, flags)
    assert bool(decision.note) == (effective != requested or force)


def test_int8_on_tx2_is_refused_with_the_reason():
    with pytest.raises(PrecisionError, match=r"INT8 refused: NVIDIA Tegra X2 \(compute 6.2, TensorRT 8.2.1.8\) has no "
                                             r"fast INT8.*--precision fp16, or pass --force"):
        choose_precision("int8", TX2)
    with pytest.raises(PrecisionError, match="unknown precision 'int4'"):
        choose_precision("int4", TX2)


def _sidecar(**changes):
    values = dict(contract=VARIANTS["goatpose-bl"].contract.to_dict(), requested_precision="fp16",
                  effective_precision="fp16", builder_flags=["fp16"], tensorrt_version="8.2.1.8",
                  gpu_name="NVIDIA Tegra X2", compute_capability=[6, 2], batch_profile={"min": 1, "opt": 4, "max": 8},
                  onnx_path="export/goatpose-bl_256x192.onnx", onnx_sha256="0" * 64)
    values.update(changes)
    return EngineSidecar(**values)


def test_sidecar_round_trip_and_schema(tmp_path):
    engine = str(tmp_path / "m.engine")
    path = write_sidecar(engine, _sidecar())
    assert path == str(tmp_path / "m.json")
    data = json.load(open(path))
    assert data["format"] == "goatpose-edge-engine/1" and data["contract"]["input_size"] == [256, 192]
    again = read_sidecar(engine)
    assert again == _sidecar() and again.model_contract == VARIANTS["goatpose-bl"].contract


@pytest.mark.parametrize("content, message", [
    (None, "has no readable sidecar"),
    ("{", "is not valid JSON"),
    ('{"format": "other"}', "is not a goatpose-edge engine sidecar"),
    ('{"format": "goatpose-edge-engine/1", "contract": {}}', "does not have the expected fields"),
])
def test_bad_sidecars(content, message, tmp_path):
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    with pytest.raises(EngineMismatchError, match=message):
        read_sidecar(str(tmp_path / "m.engine"))


def test_foreign_engines_are_refused_in_one_line():
    sidecar = _sidecar()
    check_compatible("m.engine", sidecar, "8.2.1.8", "NVIDIA Tegra X2", (6, 2))
    with pytest.raises(EngineMismatchError) as info:
        check_compatible("m.engine", sidecar, "10.3.0.26", "NVIDIA GeForce RTX 3080", (8, 6))
    assert str(info.value) == (
        "m.engine was built with TensorRT 8.2.1.8 on NVIDIA Tegra X2 (compute 6.2); this machine has TensorRT 10.3.0.26 "
        "on NVIDIA GeForce RTX 3080 (compute 8.6): engines only run where they were built, rebuild it here with "
        "`goatpose build export/goatpose-bl_256x192.onnx`")
    with pytest.raises(EngineMismatchError, match="TensorRT 8.2.1.8 on NVIDIA Tegra X2.*TensorRT 8.0.1.6"):
        check_compatible("m.engine", sidecar, "8.0.1.6", "NVIDIA Tegra X2", (6, 2))


def test_default_engine_name():
    contract = VARIANTS["goatpose-bl"].contract
    assert default_engine_path(contract.name, contract.input_size, "fp16", {"min": 1, "opt": 4, "max": 8}, "8.2.1.8",
                               "NVIDIA Tegra X2") == \
        os.path.join("engines", "goatpose-bl_256x192_fp16_b1-8_trt8.2.1.8_tegra-x2.engine")
    assert default_engine_path(contract.name, contract.input_size, "int8", {"min": 4, "opt": 4, "max": 4}, "10.3.0",
                               "NVIDIA GeForce RTX 3080", flip=True, folder="out").endswith(
        "out/goatpose-bl_256x192_flip_int8_b4_trt10.3.0_geforce-rtx-3080.engine")
    assert default_engine_path("yolov8n", (640, 640), "fp16", {"min": 1, "opt": 1, "max": 1}, "8.2.1.8",
                               "NVIDIA Tegra X2") == os.path.join("engines", "yolov8n_640x640_fp16_b1_trt8.2.1.8_"
                                                                             "tegra-x2.engine")


def test_trtexec_lines_per_generation():
    profile = BatchProfile(1, 4, 8)
    line8 = trtexec_command("m.onnx", "m.engine", ["fp16"], profile, (256, 192), 1024, named_tensors=False,
                            timing_cache="engines/timing.cache")
    assert line8 == ("trtexec --onnx=m.onnx --saveEngine=m.engine --fp16 --minShapes=input:1x3x256x192 "
                     "--optShapes=input:4x3x256x192 --maxShapes=input:8x3x256x192 --workspace=1024 "
                     "--timingCacheFile=engines/timing.cache")
    line10 = trtexec_command("m.onnx", "m.engine", ["int8", "fp16"], profile, (256, 192), 512, named_tensors=True,
                             calib_cache="m.calib", dla_core=0)
    assert "--int8 --fp16 --calib=m.calib" in line10 and "--memPoolSize=workspace:512M" in line10
    assert line10.endswith("--useDLACore=0 --allowGPUFallback")


def test_batch_profile_validation():
    with pytest.raises(EngineBuildError, match="1 <= min <= opt <= max"):
        BatchProfile(4, 2, 8)


def test_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_of(str(path)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("cc, fp16, int8", [((6, 2), True, False), ((5, 3), True, False), ((6, 1), False, True),
                                            ((8, 6), True, True), ((7, 2), True, True), ((6, 0), True, False)])
def test_capabilities_from_the_compute_capability_on_tensorrt_11(cc, fp16, int8):
    """TensorRT 11 has no Builder.platform_has_fast_fp16/int8 (deprecated in 10.5): the compute capability decides."""
    from types import SimpleNamespace

    from goatpose_edge.engines.builder import probe_platform

    trt11 = SimpleNamespace(__version__="11.0.0.1", BuilderFlag=SimpleNamespace())  # no FP16/INT8 flags either
    builder = SimpleNamespace(num_DLA_cores=0)
    caps = probe_platform(trt11, builder, SimpleNamespace(gpu_name="GPU", compute_capability=cc))
    assert (caps.fast_fp16, caps.fast_int8, caps.precision_flags) == (fp16, int8, False)
    old = SimpleNamespace(platform_has_fast_fp16=False, platform_has_fast_int8=True, num_DLA_cores=2)
    caps = probe_platform(trt11, old, SimpleNamespace(gpu_name="GPU", compute_capability=cc))
    assert (caps.fast_fp16, caps.fast_int8, caps.dla_cores) == (False, True, 2)  # the builder's word when it has one
