"""``goatpose build`` as a user runs it, under the strict TensorRT fakes: the trtexec line it prints is the builder's
(one decision of the TensorRT generation), and the batch-profile options."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT, SHARED_DATA, stand_in_pose_onnx

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")

pytestmark = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("onnx") / "tiny.onnx"),
                              [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])


def _build(version, platform, *args, cwd=None):
    return subprocess.run(
        [sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform", platform,
         "--strict", "--quiet-trt", "--show", "0", "-m", "goatpose_edge", "build"] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300, cwd=cwd,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))


@pytest.mark.parametrize("version, platform, workspace", [("8.2.1", "tx2", "--workspace=512"),
                                                          ("10.x", "desktop", "--memPoolSize=workspace:512M")])
def test_print_trtexec_gives_the_same_build_in_the_generation_s_syntax(version, platform, workspace, tiny_onnx,
                                                                       tmp_path):
    engine, cache = str(tmp_path / "bl.engine"), str(tmp_path / "timing.cache")
    run = _build(version, platform, tiny_onnx, "--batch", "2", "--workspace", "512", "--timing-cache", cache,
                 "--print-trtexec", "-o", engine)
    assert run.returncode == 0, run.stdout + run.stderr
    assert os.path.isfile(engine)  # --print-trtexec is no dry run, and says so before its line
    said = run.stdout.splitlines()
    assert said[said.index(next(line for line in said if line.startswith("trtexec "))) - 1] == (
        "the same engine with trtexec (built above by goatpose; --print-trtexec does not skip the build):")
    lines = [line for line in run.stdout.splitlines() if line.startswith("trtexec ")]
    assert lines == ["trtexec --onnx={} --saveEngine={} --fp16 --minShapes=input:2x3x256x192 "
                     "--optShapes=input:2x3x256x192 --maxShapes=input:2x3x256x192 {} --timingCacheFile={}".format(
                         tiny_onnx, engine, workspace, cache)]


def test_batch_and_a_profile_together_are_refused_in_one_line(tiny_onnx, tmp_path):
    run = _build("8.2.1", "tx2", tiny_onnx, "--batch", "2", "--max-batch", "4", "-o", str(tmp_path / "e.engine"))
    assert run.returncode == 2 and not os.listdir(str(tmp_path))  # a command-line mistake, as argparse's
    assert run.stderr.strip() == "goatpose build: error: --batch N fixes the batch: give it or " \
                                 "--min/--opt/--max-batch, not both (see goatpose build --help)"


@pytest.mark.parametrize("name", ["x.json", "x.calib", "x.calib.json"])
def test_a_build_never_replaces_someone_s_file_named_like_its_sidecar_or_cache(tiny_onnx, tmp_path, name):
    """The issue's case: an unrelated sub/x.json (COCO annotations) where -o sub/x.engine puts its sidecar, also when
    the build would fail afterwards (--verify): refused before the build, nothing written."""
    victim = tmp_path / name
    victim.write_text('{"images": [], "annotations": []}\n')
    run = _build("8.2.1", "tx2", tiny_onnx, "--precision", "int8", "--calib-images", str(tmp_path), "--verify",
                 "-o", str(tmp_path / "x.engine"))
    assert run.returncode == 1 and run.stderr.startswith("goatpose: error: refusing to replace {} ".format(victim))
    assert "--overwrite" in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert sorted(os.listdir(str(tmp_path))) == [name] and "annotations" in victim.read_text()


def test_a_rebuild_replaces_its_own_sidecar(tiny_onnx, tmp_path):
    engine = str(tmp_path / "x.engine")
    assert _build("8.2.1", "tx2", tiny_onnx, "-o", engine).returncode == 0
    first = (tmp_path / "x.json").read_text()
    run = _build("8.2.1", "tx2", tiny_onnx, "--batch", "2", "-o", engine)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "x.json").read_text() != first and sorted(os.listdir(str(tmp_path))) == ["x.engine", "x.json"]


def test_overwrite_allows_replacing_a_foreign_sidecar_name(tiny_onnx, tmp_path):
    (tmp_path / "x.json").write_text("mine")
    run = _build("8.2.1", "tx2", tiny_onnx, "-o", str(tmp_path / "x.engine"), "--overwrite")
    assert run.returncode == 0, run.stderr
    assert '"format": "goatpose-edge-engine/1"' in (tmp_path / "x.json").read_text()


def test_a_missing_verify_image_is_refused_before_the_build(tiny_onnx, tmp_path):
    run = _build("8.2.1", "tx2", tiny_onnx, "--verify", "--image", str(tmp_path / "missing.jpg"), "-o",
                 str(tmp_path / "x.engine"))
    assert run.returncode == 1 and "cannot read image {}: not found".format(tmp_path / "missing.jpg") in run.stderr
    assert "building" not in run.stdout and not os.listdir(str(tmp_path)), run.stdout


def test_a_calibration_cache_is_recognised_as_one(tmp_path):
    from goatpose_edge.engines.builder import derived_kinds

    kinds = derived_kinds(str(tmp_path / "x.engine"))
    (tmp_path / "x.calib").write_bytes(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
    (tmp_path / "x.calib.json").write_text('{"format": "goatpose-edge-calibration/1"}')
    (tmp_path / "x.json").write_text('{"format": "goatpose-edge-engine/1"}')
    assert all(kind.recognise(path) for path, kind in kinds.items())
    for path in kinds:
        open(path, "w").write("TRT notes\n")
    assert not any(kind.recognise(path) for path, kind in kinds.items())


def test_the_default_name_s_sidecar_is_guarded_too(tiny_onnx, tmp_path):
    """Without -o the engine's name is known only once TensorRT is open: the builder checks the derived names then,
    with the same rule (a file goatpose build did not write is refused, naming --overwrite)."""
    first = _build("8.2.1", "tx2", tiny_onnx, cwd=str(tmp_path))
    assert first.returncode == 0, first.stderr
    engines = tmp_path / "engines"
    engine = next(p for p in engines.iterdir() if p.suffix == ".engine")
    sidecar = engine.with_suffix(".json")
    engine.unlink()
    sidecar.write_text('{"images": [], "annotations": []}')  # someone's COCO file under the sidecar's name
    again = _build("8.2.1", "tx2", tiny_onnx, cwd=str(tmp_path))
    assert again.returncode == 1 and "refusing to replace engines/{} (the sidecar of the engine)".format(
        sidecar.name) in again.stderr, again.stderr
    assert "--overwrite" in again.stderr and sidecar.read_text() == '{"images": [], "annotations": []}'
    assert not engine.exists()
    forced = _build("8.2.1", "tx2", tiny_onnx, "--overwrite", cwd=str(tmp_path))
    assert forced.returncode == 0 and engine.exists(), forced.stderr
