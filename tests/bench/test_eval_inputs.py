"""`goatpose eval` on bad annotation and detection files: one line, exit 1, nothing written, and the model never runs.

The pose model is a hand-built ONNX (pool + 1x1 conv) that carries goatpose-bl's contract: cheap to load and run.
"""

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from goatpose_edge.bench.coco_eval import evaluate_runner
from goatpose_edge.coco import AnnotationError, load_coco
from goatpose_edge.cli import main
from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.variants import VARIANTS

CONTRACT = VARIANTS["goatpose-bl"].contract


@pytest.fixture(scope="module")
def tiny_pose_onnx(tmp_path_factory):
    height, width = CONTRACT.input_size
    weights = numpy_helper.from_array(np.random.default_rng(0).standard_normal(
        (CONTRACT.num_keypoints, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
         helper.make_node("Conv", ["pooled", "w"], ["heatmaps"])], "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", CONTRACT.num_keypoints, height // 4,
                                                                       width // 4])], initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    helper.set_model_props(model, {METADATA_KEY: CONTRACT.to_json()})
    path = str(tmp_path_factory.mktemp("tiny") / "tiny_pose.onnx")
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def sample(shared_data):
    root = os.path.join(shared_data, "coco_sample")
    with open(os.path.join(root, "test_coco.json")) as f:
        return root, os.path.join(root, "test_coco.json"), json.load(f)


def _write_json(tmp_path, name, value) -> str:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return str(path)


def _eval(capsys, model, root, *extra):
    code = main(["eval", model, "--coco-root", root, "--no-progress"] + list(extra))
    out, err = capsys.readouterr()
    return code, out, err


def _refused(code, out, err, message):
    assert code == 1, (code, out, err)
    assert out == ""  # no AP line: nothing claims a result
    assert err.count("\n") == 1 and err.startswith("goatpose: error: ") and message in err, err
    assert "internal error" not in err


def test_a_valid_file_evaluates_and_records_its_thresholds(tiny_pose_onnx, sample, tmp_path, capsys):
    root, ann, _ = sample
    code, out, err = _eval(capsys, tiny_pose_onnx, root, "--ann", ann, "--limit", "1", "--out",
                           str(tmp_path / "run"))
    assert code == 0, err
    assert "on 1 images" in out and "AP " in out
    settings = json.load(open(str(tmp_path / "run.json")))["settings"]
    assert settings["oks_nms"] == 0.9 and settings["rescore_threshold"] == 0.2


def test_the_record_holds_the_thresholds_the_estimator_ran_with(tiny_pose_onnx, sample, monkeypatch):
    """One source: the thresholds handed to the estimator are the ones recorded (HRNet's, the codec's defaults)."""
    from goatpose_edge import pipeline
    from goatpose_edge.bench import coco_eval
    from goatpose_edge.runtime import load_runner

    assert coco_eval.hrnet_thresholds() == {"oks_nms": 0.9, "rescore_threshold": 0.2}
    monkeypatch.setattr(coco_eval, "hrnet_thresholds", lambda: {"oks_nms": 0.5, "rescore_threshold": 0.2})
    used = []

    class Estimator(pipeline.TopDownPoseEstimator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            used.append(self.oks_nms_threshold)

    monkeypatch.setattr(pipeline, "TopDownPoseEstimator", Estimator)
    root, ann, _ = sample
    with load_runner(tiny_pose_onnx) as runner:
        result = evaluate_runner(runner, root, ann, limit=1, progress=False)
    assert used == [0.5] and result.to_dict()["settings"]["oks_nms"] == 0.5


def _without(data, key):
    return dict(data, annotations=[{k: v for k, v in a.items() if k != key} for a in data["annotations"]])


@pytest.mark.parametrize("make, message", [
    (lambda d: dict(d, images=[], annotations=[]), "no images in "),
    (lambda d: d["annotations"], "not a COCO annotation file (a JSON object with images/annotations/categories "
                                 "expected)"),
    (lambda d: {"images": d["images"]}, "not a COCO annotation file (a JSON object with images/annotations/"
                                        "categories expected); its 'annotations' is missing"),
    (lambda d: _without(d, "keypoints"), "has no 'keypoints': not a person-keypoints annotation"),
    (lambda d: _without(d, "num_keypoints"), "has no 'num_keypoints'"),
    (lambda d: dict(d, annotations=[dict(a, num_keypoints=0) for a in d["annotations"]]),
     "has no person annotations with keypoints"),
    (lambda d: dict(d, annotations=[]), "has no person annotations with keypoints"),
    (lambda d: dict(d, annotations=[dict(a, keypoints=a["keypoints"][:30]) for a in d["annotations"]]),
     "keypoints that are not 51 numbers"),
    (lambda d: dict(d, categories=[]), "has no person category"),
    (lambda d: dict(d, images=[{"id": 1}]), "image #0 is not a COCO image record"),
    (lambda d: "{ this is not json", "is not valid JSON"),
], ids=["no-images", "json-list", "no-annotations-key", "no-keypoints", "no-num-keypoints", "zero-keypoints",
        "no-annotations", "short-keypoints", "no-categories", "bad-image-record", "invalid-json"])
def test_bad_annotation_files_are_refused(tiny_pose_onnx, sample, tmp_path, capsys, make, message):
    root, _, data = sample
    bad = _write_json(tmp_path, "bad.json", make(data))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _refused(*_eval(capsys, tiny_pose_onnx, root, "--ann", bad, "--out", str(out_dir / "run")), message)
    assert os.listdir(str(out_dir)) == []


def test_missing_annotation_file(tiny_pose_onnx, sample, tmp_path, capsys):
    root, _, _ = sample
    _refused(*_eval(capsys, tiny_pose_onnx, root, "--ann", str(tmp_path / "none.json")), "not found")


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_below_one(tiny_pose_onnx, sample, capsys, limit):
    root, ann, _ = sample
    try:  # the parser may refuse it (exit 2, its one-line usage error) or the evaluation (exit 1)
        code = main(["eval", tiny_pose_onnx, "--coco-root", root, "--ann", ann, "--limit", str(limit)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (1, 2) and out == "" and err.count("\n") == 1 and "--limit" in err, (code, err)
    assert "internal error" not in err
    with pytest.raises(GoatPoseError, match="--limit must be a whole number >= 1"):  # library callers too
        evaluate_runner(_UntouchableRunner(), root, ann, limit=limit, progress=False)


def test_limit_on_images_without_persons(tiny_pose_onnx, sample, tmp_path, capsys):
    root, _, data = sample
    first = dict(data["images"][0], id=1)  # sorts first and has no annotations
    ann = _write_json(tmp_path, "ann.json", dict(data, images=[first] + data["images"]))
    _refused(*_eval(capsys, tiny_pose_onnx, root, "--ann", ann, "--limit", "1"), "no person boxes")
    code, out, _ = _eval(capsys, tiny_pose_onnx, root, "--ann", ann, "--limit", "2")  # the control
    assert code == 0 and "on 2 images" in out


@pytest.mark.parametrize("detections, message", [
    ([{"foo": 1}, {"bar": 2}], "record #0 is not a detection result"),
    ([{"image_id": 785, "category_id": 1, "bbox": [1, 2, 3], "score": 0.9}], "record #0 is not a detection result"),
    ([{"image_id": "785", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}], "is not a detection result"),
    ({"image_id": 785}, "is not a COCO detection-results list"),
    ([{"image_id": 123456789, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.9}],
     "none of the person detections in"),
    ([{"image_id": 785, "category_id": 3, "bbox": [1, 2, 30, 40], "score": 0.9}], "has no person detections"),
    ("[not json", "is not valid JSON"),
], ids=["wrong-records", "short-bbox", "string-id", "not-a-list", "other-images", "no-persons", "invalid-json"])
def test_bad_detection_files_are_refused(tiny_pose_onnx, sample, tmp_path, capsys, detections, message):
    root, ann, _ = sample
    det = _write_json(tmp_path, "det.json", detections)
    _refused(*_eval(capsys, tiny_pose_onnx, root, "--ann", ann, "--det-json", det), message)


class _UntouchableRunner:
    """Fails the test if the evaluation touches the model at all."""

    def __getattr__(self, name):
        raise AssertionError("the model was used ({}) before the input was checked".format(name))


def test_the_annotations_are_checked_before_the_model_is_touched(sample, tmp_path):
    root, ann, data = sample
    bad = _write_json(tmp_path, "bad.json", _without(data, "keypoints"))
    with pytest.raises(AnnotationError, match="has no 'keypoints'"):
        evaluate_runner(_UntouchableRunner(), root, bad, progress=False)
    det = _write_json(tmp_path, "det.json", [{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 1.0}])
    with pytest.raises(AnnotationError, match="none of the person detections"):
        evaluate_runner(_UntouchableRunner(), root, ann, det_json=det, progress=False)
    with pytest.raises(GoatPoseError, match="--limit must be"):
        evaluate_runner(_UntouchableRunner(), root, ann, limit=0, progress=False)


def test_load_coco_gives_the_checked_index(sample):
    _, ann, data = sample
    coco = load_coco(ann)
    assert sorted(coco.getImgIds()) == sorted(i["id"] for i in data["images"])
    assert len(coco.getAnnIds()) == len(data["annotations"])
