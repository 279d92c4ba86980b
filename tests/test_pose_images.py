"""``pose_images``: still images in, one result per image, on the dot model whose truth is known."""

import json

import cv2
import pytest

from goatpose_edge.imagefile import ImageError
from goatpose_edge.pipeline import TopDownPoseEstimator
from goatpose_edge.pose_images import PoseOptions, pose_images
from goatpose_edge.runtime import open_runner
from goatpose_edge.synthetic import FigureDetector, build_dot_pose_onnx, render_scene, score_predictions, walkers


@pytest.fixture(scope="module")
def stills(tmp_path_factory):
    """(dot model path, [PNG paths], [truth per image]) of 3 walkers frames (4 figures each, some cut by the border)."""
    folder = tmp_path_factory.mktemp("stills")
    paths, truth = [], []
    for index, (frame, figures) in enumerate(render_scene(walkers(frames=3))):
        paths.append(str(folder / "frame{}.png".format(index)))  # lossless: the pixels the scene drew
        cv2.imwrite(paths[-1], frame)
        truth.append(figures)
    return build_dot_pose_onnx(str(folder / "dotpose.onnx")), paths, truth


def test_one_result_per_image_in_order_on_the_truth(stills):
    model, paths, truth = stills
    results = list(pose_images(paths, PoseOptions(model, detector="figures", post_process="dark")))
    assert [r.image for r in results] == paths
    score = score_predictions([r.persons for r in results], truth)
    assert score.recall == 1.0 and score.precision == 1.0
    assert score.rms_px < 0.3  # the synthetic suite's bound for DARK on lossless frames (measured here: 0.15 px)
    line = json.loads(results[0].to_json())
    assert line["image"] == paths[0] and len(line["persons"]) == len(results[0].persons)
    assert all(len(person["keypoints"]) == 17 for person in line["persons"])


def test_an_estimator_of_the_callers_gives_the_same_results(stills):
    model, paths, _ = stills
    own = list(pose_images(paths[:1], PoseOptions(model, detector="figures", post_process="none", flip=True)))
    with open_runner(model) as runner:
        estimator = TopDownPoseEstimator(FigureDetector(), runner, flip=True, post_process=None)
        given = list(pose_images(paths[:1], estimator))
    assert [r.to_dict() for r in given] == [r.to_dict() for r in own]


def test_an_unreadable_image_fails_before_any_model_is_opened(stills, tmp_path):
    _, paths, _ = stills
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    missing_model = str(tmp_path / "nowhere.onnx")  # opening it would fail with another error
    with pytest.raises(ImageError, match="broken.jpg is not an image OpenCV can decode"):
        pose_images([paths[0], str(broken)], PoseOptions(missing_model))
