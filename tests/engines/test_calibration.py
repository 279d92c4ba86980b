"""INT8 calibration crops are the runtime pipeline's own preprocessing of real COCO persons."""

import os

import cv2
import numpy as np
import pytest

from goatpose_edge.codec import crops_from_boxes
from goatpose_edge.engines.calibration import (CalibrationError, batches, calibration_crops, person_boxes_from_coco,
                                               person_boxes_from_folder)
from goatpose_edge.variants import VARIANTS


def test_coco_calibration_crops_equal_the_codec(shared_data):
    folder = os.path.join(shared_data, "coco_sample")
    sources = person_boxes_from_coco(os.path.join(folder, "test_coco.json"), folder)
    assert len(sources) == 12  # non-crowd persons with keypoints
    contract = VARIANTS["goatpose-bl"].contract
    crops = calibration_crops(sources, contract, 5)
    assert crops.shape == (5, 3, 256, 192) and crops.dtype == np.float32
    for crop, (path, box) in zip(crops, sources):
        np.testing.assert_array_equal(crop, crops_from_boxes(cv2.imread(path), [box], contract)[0])


def test_folder_calibration_uses_whole_images(shared_data, tmp_path):
    folder = os.path.join(shared_data, "coco_sample")
    sources = person_boxes_from_folder(folder)
    assert [os.path.basename(p) for p, _ in sources][:2] == ["000000000785.jpg", "000000040083.jpg"]
    assert all(box is None for _, box in sources)
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(CalibrationError, match="calibration image: .*broken.jpg is not an image OpenCV can decode"):
        calibration_crops(person_boxes_from_folder(str(tmp_path)), VARIANTS["goatpose-bl"].contract, 4)
    good = sources[0][0]
    (tmp_path / "cut.jpg").write_bytes(open(good, "rb").read()[:20000])  # a truncated photo is refused too
    with pytest.raises(CalibrationError, match="cut.jpg is a truncated or corrupt JPEG"):
        calibration_crops([(str(tmp_path / "cut.jpg"), None)], VARIANTS["goatpose-bl"].contract, 4)
    with pytest.raises(CalibrationError, match="holds no images"):
        person_boxes_from_folder(str(tmp_path / "empty")) if (tmp_path / "empty").mkdir() is None else None
    with pytest.raises(CalibrationError, match="calibration folder not found"):
        person_boxes_from_folder(str(tmp_path / "missing"))


def test_batches_are_full_and_wrap_around():
    crops = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    out = list(batches(crops, 2))
    assert [b.ravel().tolist() for b in out] == [[0, 1], [2, 3], [4, 0]]
