"""Detectors: HOG on real photos, YOLO layouts on synthetic ONNX heads, COCO results, keypoint-box reuse."""

import json
import os

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from goatpose_edge.detection import (Detections, DetectorError, HOGDetector, KeypointBoxReuse, WholeFrame,
                                     YoloDetector, load_coco_detections, make_detector)
from goatpose_edge.detection.reuse import track_alive
from goatpose_edge.detection.yolo import guess_layout


def _iou(a, b):
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def test_hog_finds_a_real_person(shared_data):
    folder = os.path.join(shared_data, "coco_sample")
    image = cv2.imread(os.path.join(folder, "000000197388.jpg"))
    with open(os.path.join(folder, "test_coco.json")) as f:
        truth = [a["bbox"] for a in json.load(f)["annotations"] if a["image_id"] == 197388]
    detections = HOGDetector().detect(image)
    assert len(detections) >= 1 and detections.boxes.dtype == np.float32
    assert max(_iou(detections.boxes[0], t) for t in truth) > 0.5
    assert np.all(np.diff(detections.scores) <= 0)  # best first
    assert len(HOGDetector().detect(np.zeros((200, 300, 3), np.uint8))) == 0


def _head_model(path, output, input_hw=(128, 96)):
    """An ONNX 'detector' whose output is a constant head tensor (its input only fixes the size)."""
    const = helper.make_node("Constant", [], ["out"], value=numpy_helper.from_array(output.astype(np.float32)))
    graph = helper.make_graph([const], "head", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                              [1, 3, input_hw[0], input_hw[1]])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(output.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.save(model, path)
    return path


CELLS = 16 * 12 + 8 * 6 + 4 * 3  # 128x96 input at strides 8, 16, 32


def _rows(layout):
    """Three candidates in input pixels: a person (0.9), the same person again (0.5), a car (0.95)."""
    rows = np.zeros((3 * CELLS if layout == "yolov5" else CELLS, 85), np.float32)
    for index, (person, car) in zip((10, 11, 12), ((0.9, 0.0), (0.5, 0.0), (0.01, 0.95))):
        rows[index, :4] = [50, 60, 20, 40]
        rows[index, 4] = 1.0
        rows[index, 5], rows[index, 8] = person, car
    if layout == "yolox":  # raw head: cell 63 of the stride-8 grid is (x 3, y 5)
        rows[63, :5] = [0.25, 0.5, np.log(2.5), np.log(5.0), 1.0]  # -> (26, 44, 20, 40)
        rows[63, 5] = 0.8
        rows[10:13, 4] = 0.0
        return rows[None]
    if layout == "yolov8":
        return np.concatenate([rows[:, :4], rows[:, 5:]], axis=1).T[None]  # [1, 84, A]
    return rows[None]


@pytest.mark.parametrize("layout, centre", [("yolov8", (50, 60)), ("yolov5", (50, 60)), ("yolox", (26, 44))])
def test_yolo_layouts_decode_to_frame_boxes(layout, centre, tmp_path):
    path = _head_model(str(tmp_path / "det.onnx"), _rows(layout))
    detector = YoloDetector(path)
    assert detector.layout == layout
    frame = np.zeros((192, 144, 3), np.uint8)  # -> 128x96 at ratio 2/3, no padding
    detections = detector.detect(frame)
    detector.close()
    assert len(detections) == 1  # the duplicate is suppressed, the car is not a person
    cx, cy = centre
    np.testing.assert_allclose(detections.boxes[0], [(cx - 10) * 1.5, (cy - 20) * 1.5, 30, 60], atol=1e-3)


def test_letterbox_padding_is_undone(tmp_path):
    detector = YoloDetector(_head_model(str(tmp_path / "det.onnx"), _rows("yolov8")))
    detections = detector.detect(np.zeros((100, 300, 3), np.uint8))  # ratio 0.32, 96x32 centred: pad_y 48
    detector.close()
    np.testing.assert_allclose(detections.boxes[0], [40 / 0.32, (40 - 48) / 0.32, 20 / 0.32, 40 / 0.32], atol=1e-3)


def test_unknown_layout_is_one_clear_error(tmp_path):
    path = _head_model(str(tmp_path / "odd.onnx"), np.zeros((1, 10, 7), np.float32))
    with pytest.raises(DetectorError, match=r"odd.onnx: unknown detector output layout \[1, 10, 7\] for input 128x96"):
        YoloDetector(path)
    assert guess_layout((1, 84, CELLS), (128, 96)) == "yolov8"


def test_coco_detection_results(shared_data, tmp_path):
    path = os.path.join(shared_data, "coco_sample", "test_coco_det_AP_H_56.json")
    per_image = load_coco_detections(path, score_threshold=0.1)
    assert set(per_image) == {785, 40083, 196141, 197388}
    assert all(np.all(np.diff(d.scores) <= 0) and d.scores.min() >= 0.1 for d in per_image.values())
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DetectorError, match="is not valid JSON"):
        load_coco_detections(str(bad))


class _Counting:
    def __init__(self):
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return Detections(np.array([[10, 10, 50, 100]], np.float32), np.array([0.8], np.float32))

    def close(self):
        pass


class _Person:
    def __init__(self, keypoints):
        self.keypoints, self.box_score = keypoints, 0.7


def test_reuse_runs_the_detector_every_n_frames_and_follows_keypoints():
    inner = _Counting()
    reuse = KeypointBoxReuse(inner, every=3)
    frame = np.zeros((10, 10, 3), np.uint8)
    keypoints = np.array([[20, 30, 0.9], [40, 90, 0.8], [30, 50, 0.5], [25, 60, 0.3], [0, 0, 0.1]], np.float32)
    seen = []
    for _ in range(6):
        seen.append(reuse.detect(frame))
        reuse.observe([_Person(keypoints)])
    assert inner.calls == 2  # frames 0 and 3
    reused = [seen[i] for i in (1, 2, 4, 5)]
    assert [d.boxes.tolist() for d in reused] == [[[15, 15, 30, 90]]] * 4  # keypoint box grown 25 % per side
    assert [d.scores.tolist() for d in reused] == [[pytest.approx(0.7)]] * 4
    reuse.observe([])  # nobody to follow: detect again at once
    reuse.detect(frame)
    assert inner.calls == 3


def test_reuse_drops_a_person_with_fewer_than_four_scoring_keypoints():
    inner = _Counting()
    reuse = KeypointBoxReuse(inner, every=3)
    frame = np.zeros((10, 10, 3), np.uint8)
    reuse.detect(frame)
    reuse.observe([_Person(np.array([[20, 30, 0.9], [40, 90, 0.8], [30, 50, 0.5], [25, 60, 0.29]], np.float32))])
    reuse.detect(frame)  # the track ended: the detector runs again at once
    assert inner.calls == 2


def test_a_track_goes_on_while_four_keypoints_score():
    points = np.zeros((17, 3))
    points[:, 0], points[:, 1] = np.arange(17) * 3.0, np.arange(17) * 6.0
    points[:4, 2] = 0.5
    assert track_alive(points, 0.3)
    points[3, 2] = 0.29
    assert not track_alive(points, 0.3)


def test_make_detector():
    assert isinstance(make_detector("whole"), WholeFrame)
    assert isinstance(make_detector("hog", every=4), KeypointBoxReuse)
    with pytest.raises(DetectorError, match="neither 'hog', 'hog:W', 'whole' nor an existing model file"):
        make_detector("/nonexistent/yolo.onnx")
    with pytest.raises(DetectorError, match="hog:W needs a width"):
        make_detector("hog:wide")
    assert make_detector("hog:640").max_width == 640
