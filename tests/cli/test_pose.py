"""``goatpose pose``: JSON lines for real photos; one-line errors for unreadable images and unknown detectors."""

import json
import os

import numpy as np

from goatpose_edge.cli import main
from tests.detection.test_detectors import _head_model
from tests.export.test_cli_export import run_cli
from tests.helpers import goatpose_here


def test_pose_json_lines(exports, coco_persons, tmp_path):
    images = [coco_persons[0][0], coco_persons[3][0]]
    output = str(tmp_path / "poses.jsonl")
    assert main(["pose"] + images + ["--pose", exports.onnx("goatpose-bl").path, "--detector", "whole", "-o", output]) == 0
    lines = [json.loads(line) for line in open(output)]
    assert [line["image"] for line in lines] == images
    for line in lines:
        person, = line["persons"]
        assert len(person["keypoints"]) == 17 and len(person["box"]) == 4


def test_unreadable_image(exports, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    code, _, err = goatpose_here(capsys, "pose", str(broken), "--pose", exports.onnx("goatpose-bl").path)
    assert code == 1
    assert err.startswith("goatpose: error: {} is not an image OpenCV can decode".format(broken))
    assert err.count("\n") == 1


def test_detector_with_an_unknown_output_layout(exports, coco_persons, tmp_path, capsys):
    detector = _head_model(str(tmp_path / "strange.onnx"), np.zeros((1, 10, 7), np.float32))
    code, _, err = goatpose_here(capsys, "pose", coco_persons[0][0], "--pose", exports.onnx("goatpose-bl").path,
                                 "--detector", detector)
    assert code == 1 and "Traceback" not in err
    assert err.startswith("goatpose: error: {}: unknown detector output layout [1, 10, 7]".format(detector))
    assert err.count("\n") == 1
    assert not os.path.exists(str(tmp_path / "poses.jsonl"))


def test_pose_draws_annotated_images_and_never_replaces_one(exports, coco_persons, tmp_path):
    import cv2

    image = coco_persons[0][0]
    drawn = str(tmp_path / "drawn")
    run = run_cli("pose", image, image, "--pose", exports.onnx("goatpose-bl").path, "--detector", "whole", "--draw",
                  drawn)
    assert run.returncode == 0, run.stderr
    stem = os.path.splitext(os.path.basename(image))[0]
    assert sorted(os.listdir(drawn)) == [stem + ".jpg", stem + "_2.jpg"]  # the same name twice: _2
    original, annotated = cv2.imread(image), cv2.imread(os.path.join(drawn, stem + ".jpg"))
    assert annotated.shape == original.shape and (annotated[:40, :, 2] > 200).any()  # the RANDOM WEIGHTS stamp
    assert "random weights: poses are noise" in run.stderr
    again = run_cli("pose", image, "--pose", exports.onnx("goatpose-bl").path, "--draw", drawn)
    assert again.returncode == 1 and "refusing to replace {}".format(os.path.join(drawn, stem + ".jpg")) in again.stderr
    assert "--overwrite" in again.stderr
