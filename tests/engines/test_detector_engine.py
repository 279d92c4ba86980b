"""`goatpose build` of a YOLO person detector (an ONNX without a goatpose contract) under the strict TensorRT fakes:
the engine, its detector sidecar and default name, the refusals in one line, `goatpose video --detector ENGINE`, and
`--verify`'s comparison of persons (the fakes compute no real outputs: a verify under them fails, and is checked to
remove the engine; the comparison itself is checked on known boxes)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from goatpose_edge.artefact.sidecar import EngineMismatchError, read_sidecar, sidecar_path
from goatpose_edge.detection.base import Detections
from goatpose_edge.engines.verify import compare_detections
from tests.detection.test_detectors import _head_model, _rows
from tests.helpers import REPO_ROOT, SHARED_DATA

TRTFAKE = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trtfake")
PERSON = os.path.join(SHARED_DATA, "coco_sample", "000000197388.jpg")

needs_fakes = pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the "
                                                                      "checkout")


def _goatpose(version, platform, *args, cwd):
    return subprocess.run(
        [sys.executable, os.path.join(TRTFAKE, "run_with_fake.py"), "--trt", version, "--platform", platform,
         "--strict", "--quiet-trt", "--show", "0", "-m", "goatpose_edge"] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300, cwd=cwd,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))


@pytest.fixture(scope="module")
def yolo_onnx(tmp_path_factory):
    """A YOLOv8-layout head at 128x96 input (one person at (50, 60) in input pixels)."""
    return _head_model(str(tmp_path_factory.mktemp("det") / "yolov8n.onnx"), _rows("yolov8"))


@needs_fakes
@pytest.mark.parametrize("version, platform, name, workspace", [
    ("8.2.1", "tx2", "yolov8n_128x96_fp16_b1_trt8.2.1.8_tegra-x2", "--workspace=1024"),
    ("10.x", "desktop", "yolov8n_128x96_fp16_b1_trt10.16.0.72_geforce-rtx-3080", "--memPoolSize=workspace:1024M")])
def test_a_detector_onnx_builds_a_detector_engine(yolo_onnx, tmp_path, version, platform, name, workspace):
    """No batch option: batch 1 (a detector takes one frame), the default name from the file's, the sidecar records
    a detector (its input and layout, no contract) and the trtexec line uses its input's name and size."""
    run = _goatpose(version, platform, "build", yolo_onnx, "--print-trtexec", cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    engine = os.path.join("engines", name + ".engine")
    assert sorted(os.listdir(str(tmp_path / "engines"))) == [name + ".engine", name + ".json"]
    said = run.stdout.splitlines()
    assert said[0].startswith("building FP16 engine for the detector yolov8n (batch 1..1)")
    assert said[1].startswith("wrote {} + {} (a yolov8 person detector: fp16 requested, fp16 built".format(
        engine, sidecar_path(engine)))
    assert "random weights" not in run.stderr  # a detector's weights are its own: nothing to say
    assert said[3] == ("trtexec --onnx={} --saveEngine={} --fp16 --minShapes=images:1x3x128x96 --optShapes=images:"
                       "1x3x128x96 --maxShapes=images:1x3x128x96 {}".format(yolo_onnx, engine, workspace))
    sidecar = read_sidecar(str(tmp_path / engine))
    assert sidecar.kind == "detector" and sidecar.contract is None and sidecar.model_contract is None
    assert sidecar.detector == {"input_name": "images", "input_size": [128, 96], "layout": "yolov8"}
    assert sidecar.batch_profile == {"min": 1, "opt": 1, "max": 1}


@needs_fakes
def test_video_runs_its_detector_on_the_engine(yolo_onnx, tmp_path):
    """`goatpose video --detector ENGINE`: the TensorRT runner takes a contract-less engine as a detector (every
    frame out; the fakes' outputs are no real detections, so the persons are not checked)."""
    folder = str(tmp_path)
    python = [sys.executable, "-m", "goatpose_edge.synthetic"]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run(python + ["scene", "walk.avi", "--preset", "walkers", "--frames", "4"], cwd=folder, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(python + ["dotpose", "dot.onnx"], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    assert _goatpose("8.2.1", "tx2", "build", yolo_onnx, "-o", "det.engine", cwd=folder).returncode == 0
    run = _goatpose("8.2.1", "tx2", "video", "walk.avi", "--pose", "dot.onnx", "--detector", "det.engine", "--jsonl",
                    "w.jsonl", "--no-progress", cwd=folder)
    assert run.returncode == 0, run.stdout + run.stderr
    with open(os.path.join(folder, "w.jsonl")) as f:
        records = [json.loads(line) for line in f][1:]  # after the header line
    assert [r["frame"] for r in records] == [0, 1, 2, 3]


@needs_fakes
def test_verify_compares_persons_and_removes_an_engine_that_fails(yolo_onnx, tmp_path):
    """onnxruntime finds the head's person; the fake engine's outputs are no detections: FAIL, the engine and its
    sidecar removed, one line, exit 1."""
    run = _goatpose("8.2.1", "tx2", "build", yolo_onnx, "--verify", "--image", PERSON, "-o", "v.engine",
                    cwd=str(tmp_path))
    assert run.returncode == 1 and os.listdir(str(tmp_path)) == []
    line = ("verify fp16 detector engine vs onnxruntime FP32 on 1 image: 2 confident persons, 2 not found by the "
            "other side (IoU >= 0.9), worst IoU -, score difference 0.000 (limit 0.05)  FAIL")
    assert line in run.stdout.splitlines()
    assert run.stderr.splitlines()[0] == "goatpose: error: {}; v.engine and its sidecar were removed".format(line)


@needs_fakes
@pytest.mark.parametrize("args, code, message", [
    (["--precision", "int8", "--calib-images", "{images}"], 1, "goatpose: error: {onnx} carries no goatpose model contract, so it is "
     "built as a person detector, and detector engines are FP16 or FP32 here (INT8 calibration takes person crops, "
     "not frames; a TX2 has no fast INT8 anyway): give --precision fp16 (a pose model: export it with `goatpose "
     "export`, which records its contract)"),
    (["--min-batch", "2", "{dynamic}"], 1, "goatpose: error: {dynamic}: a detector engine takes one frame at a time, so its batch "
     "profile starts at 1, not 2 (drop --batch/--min-batch; an ONNX exported at batch 2: export it at batch 1)"),
    (["--verify"], 2, "goatpose build: error: --verify compares the engine with onnxruntime on real images: give "
     "--image IMG (a person photo; repeatable) or --calib-images DIR / --calib-coco ANN IMGDIR (see goatpose build "
     "--help)"),
])
def test_what_cannot_be_built_is_one_line_before_the_build(yolo_onnx, tmp_path, args, code, message):
    names = dict(images=os.path.join(SHARED_DATA, "coco_sample"), onnx=yolo_onnx,
                 dynamic=_dynamic_batch(str(tmp_path.parent / (tmp_path.name + "_dynamic.onnx"))))
    args = [a.format(**names) for a in args]
    model = args.pop() if args[-1] == names["dynamic"] else yolo_onnx
    run = _goatpose("8.2.1", "tx2", "build", model, "-o", "x.engine", *args, cwd=str(tmp_path))
    assert run.returncode == code and os.listdir(str(tmp_path)) == [], run.stderr
    assert run.stderr.splitlines() == [message.format(**names)]


def _dynamic_batch(path):
    """The YOLOv8 head with a dynamic batch axis (N, 3, 128, 96), as `yolo export ... dynamic=True` gives it."""
    import onnx

    _head_model(path, _rows("yolov8"))
    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(model, path)
    return path


@needs_fakes
def test_an_onnx_that_is_neither_pose_nor_detector_is_one_line(tmp_path):
    odd = _head_model(str(tmp_path / "odd.onnx"), np.zeros((1, 10, 7), np.float32))
    run = _goatpose("8.2.1", "tx2", "build", odd, "-o", "x.engine", cwd=str(tmp_path))
    assert run.returncode == 1 and sorted(os.listdir(str(tmp_path))) == ["odd.onnx"]
    assert run.stderr.splitlines() == [
        "goatpose: error: {} carries no goatpose model contract and is no YOLO detector either (unknown detector "
        "output layout [1, 10, 7] for input 128x96: expected YOLOX [1, 252, 5+C], YOLOv5 [1, 756, 5+C] or YOLOv8 "
        "[1, 4+C, 252]): export pose models with `goatpose export`; detectors: a YOLOX, YOLOv5 or YOLOv8 "
        "ONNX".format(odd)]


def _detections(*rows):
    return Detections.sorted([r[:4] for r in rows], [r[4] for r in rows])


def test_compare_detections_gates_iou_and_score():
    person = (100, 50, 40, 120, 0.9)
    same = compare_detections("x", [_detections(person)], [_detections((101, 50, 40, 120, 0.89))], "fp16", 0.3)
    assert same.ok and same.confident == 2 and same.missed == 0 and 0.95 < same.worst_iou < 1
    assert abs(same.max_score_diff - 0.01) < 1e-6
    moved = compare_detections("x", [_detections(person)], [_detections((110, 50, 40, 120, 0.9))], "fp16", 0.3)
    assert not moved.ok and moved.missed == 2 and moved.worst_iou is None  # IoU 0.6: neither finds the other
    rescored = compare_detections("x", [_detections(person)], [_detections((100, 50, 40, 120, 0.8))], "fp16", 0.3)
    assert not rescored.ok and rescored.missed == 0 and rescored.line().endswith(
        "worst IoU 1.000, score difference 0.100 (limit 0.05)  FAIL")
    # a person at the threshold on one side only is no failure; a confident one missing is
    assert compare_detections("x", [_detections(person, (300, 50, 40, 120, 0.35))], [_detections(person)],
                              "fp16", 0.3).ok
    assert not compare_detections("x", [_detections(person)], [Detections.empty()], "fp32", 0.3).ok
    # images where neither side finds anyone compare nothing: an engine that finds nobody must not pass on them
    nobody = compare_detections("x", [Detections.empty()], [Detections.empty()], "fp16", 0.3)
    assert not nobody.ok and nobody.line() == ("x: neither side found a person scored the detector's threshold + 0.1 "
                                               "or more: nothing to compare, give --image photos with persons  FAIL")


def test_a_damaged_detector_sidecar_is_refused_and_an_old_pose_sidecar_still_reads(tmp_path):
    engine = str(tmp_path / "d.engine")
    base = {"requested_precision": "fp16", "effective_precision": "fp16", "builder_flags": ["fp16"],
            "tensorrt_version": "8.2.1.8", "gpu_name": "NVIDIA Tegra X2", "compute_capability": [6, 2],
            "batch_profile": {"min": 1, "opt": 1, "max": 1}, "onnx_path": "d.onnx", "onnx_sha256": "0" * 64,
            "format": "goatpose-edge-engine/1"}
    for detector in (None, {"input_name": "images", "input_size": [640], "layout": "yolov8"}):
        with open(sidecar_path(engine), "w") as f:
            json.dump(dict(base, contract=None, kind="detector", detector=detector), f)
        with pytest.raises(EngineMismatchError, match="does not have the expected fields: a detector engine needs"):
            read_sidecar(engine)
    from goatpose_edge.variants import VARIANTS

    with open(sidecar_path(engine), "w") as f:  # written before "kind" existed: a pose engine
        json.dump(dict(base, contract=VARIANTS["goatpose-bl"].contract.to_dict()), f)
    sidecar = read_sidecar(engine)
    assert sidecar.kind == "pose" and sidecar.model_contract.name == "goatpose-bl"


def test_a_pose_sidecar_keeps_the_fields_older_readers_know(tmp_path):
    """A pose engine's sidecar has no ``kind``/``detector`` (a goatpose from before detector engines refuses fields
    it does not know: engines built now still run there); a detector's has both, and reads back."""
    from goatpose_edge.artefact.sidecar import EngineSidecar, write_sidecar
    from goatpose_edge.variants import VARIANTS

    common = dict(requested_precision="fp16", effective_precision="fp16", builder_flags=["fp16"],
                  tensorrt_version="8.2.1.8", gpu_name="NVIDIA Tegra X2", compute_capability=[6, 2],
                  batch_profile={"min": 1, "opt": 1, "max": 1}, onnx_path="m.onnx", onnx_sha256="0" * 64)
    pose = str(tmp_path / "pose.engine")
    write_sidecar(pose, EngineSidecar(contract=VARIANTS["goatpose-bl"].contract.to_dict(), **common))
    with open(sidecar_path(pose)) as f:
        assert not {"kind", "detector"} & set(json.load(f))
    assert read_sidecar(pose).kind == "pose"
    detector = str(tmp_path / "det.engine")
    record = {"input_name": "images", "input_size": [640, 640], "layout": "yolov8"}
    write_sidecar(detector, EngineSidecar(contract=None, kind="detector", detector=record, **common))
    back = read_sidecar(detector)
    assert back.kind == "detector" and back.detector == record and back.model_name == "m.onnx"
