"""COCO evaluation: the scoring on ground truth (AP 1.0), HRNet's GT-box set, and a real run through a runner."""

import json
import os
import subprocess
import sys

import pytest

from goatpose_edge.artefact.sidecar import sha256_of
from goatpose_edge.bench.coco_eval import evaluate_keypoints, evaluate_runner
from goatpose_edge.coco import ground_truth_detections, load_coco
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime import load_runner
from tests.helpers import goatpose_here


@pytest.fixture(scope="module")
def sample(shared_data):
    root = os.path.join(shared_data, "coco_sample")
    return root, os.path.join(root, "test_coco.json")


def test_ground_truth_as_predictions_gives_ap_1(sample):
    _, ann = sample
    coco = load_coco(ann)
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in coco.dataset["annotations"] if a["num_keypoints"] > 0]
    stats = evaluate_keypoints(coco, results)
    assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AR"] == 1.0
    shifted = [dict(r, keypoints=[v + 15 if i % 3 != 2 else v for i, v in enumerate(r["keypoints"])]) for r in results]
    assert evaluate_keypoints(coco, shifted)["AP"] < 0.9  # the control: 15 px off is no longer perfect
    assert evaluate_keypoints(coco, [])["AP"] == 0.0


def test_ground_truth_boxes_are_hrnets_set(sample):
    _, ann = sample
    coco = load_coco(ann)
    counts = {i: len(ground_truth_detections(coco, i)) for i in coco.getImgIds()}
    assert sum(counts.values()) == 12  # 14 persons, 2 without keypoints
    assert all(float(s) == 1.0 for i in counts for s in ground_truth_detections(coco, i).scores)


@pytest.fixture(scope="module")
def bl_onnx(exports):
    return exports.onnx("goatpose-bl").path


def test_eval_through_a_runner_with_detections(sample, bl_onnx, shared_data):
    root, ann = sample
    det = os.path.join(root, "test_coco_det_AP_H_56.json")
    with load_runner(bl_onnx) as runner:
        result = evaluate_runner(runner, root, ann, det_json=det, flip=False, limit=2, progress=False)
    assert result.images == 2
    detections = json.load(open(det))
    first_two = sorted(i["id"] for i in json.load(open(ann))["images"])[:2]
    assert result.boxes == sum(1 for d in detections if d["image_id"] in first_two and d["category_id"] == 1)
    assert 0 < result.persons <= result.boxes  # OKS-NMS removes duplicates, never adds
    assert all(0.0 <= v <= 1.0 or v == -1.0 for v in result.stats.values())
    assert all(len(r["keypoints"]) == 51 and r["image_id"] in first_two for r in result.results)


def test_eval_command_writes_records_and_refuses_bad_input(sample, bl_onnx, tmp_path, capsys):
    root, ann = sample
    out = str(tmp_path / "eval_bl")
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "eval", bl_onnx, "--coco-root", root, "--ann", ann,
                          "--limit", "1", "--no-flip", "--no-progress", "--out", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr
    assert "AP " in run.stdout and "on 1 images" in run.stdout
    record = json.load(open(out + ".json"))
    assert record["format"] == "goatpose-edge-eval/1" and record["artefact"] == os.path.basename(bl_onnx)
    assert record["artefact_sha256"] == sha256_of(bl_onnx)  # what bench's AP-vs-fps plot matches the file by
    assert record["settings"]["boxes"] == "ground truth" and record["images"] == 1
    assert isinstance(json.load(open(out + "_results.json")), list)
    code, _, err = goatpose_here(capsys, "eval", bl_onnx, "--coco-root", str(tmp_path))  # in process
    assert code == 1 and err.count("\n") == 1 and "annotation file" in err


def test_missing_image_fails_before_inference(tmp_path, sample):
    _, ann = sample
    with pytest.raises(GoatPoseError, match="not found under"):
        evaluate_runner(None, str(tmp_path), ann, progress=False)
