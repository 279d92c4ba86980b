"""Every detector takes every frame: no native crash (OpenCV's HOG corrupts the heap on frames below its 64x128 window),
no persons where the frame is too small for the detector's window (after its own downscale), empty frames give nobody,
and grayscale / BGRA / 16-bit frames are converted to 8-bit BGR (float frames are refused with one GoatPoseError)."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from goatpose_edge.detection import HOGDetector, KeypointBoxReuse, WholeFrame, YoloDetector, make_detector
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError
from tests.detection.test_detectors import _head_model, _rows

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DETECTORS = ["hog", "hog:64", "hog:640", "whole", "yolo", "reuse:hog", "reuse:whole"]
SHAPES = [(1, 1), (24, 200), (200, 24), (20, 200), (200, 20), (63, 127), (127, 63), (64, 128), (128, 64),
          (130, 700), (128, 1400), (0, 0), (0, 10), (10, 0)]  # (height, width)


def _hog_fits(spec, height, width):
    """Whether a (height, width) frame still covers HOG's 64x128 window after the detector's downscale to W wide."""
    max_width = int(spec.split(":")[1]) if ":" in spec else 1280
    factor = min(1.0, max_width / float(width))
    return round(width * factor) >= 64 and round(height * factor) >= 128


def expected_count(detector, height, width):
    """Persons on a black frame: nobody on an empty frame or one HOG cannot take (nor on any black frame: HOG
    finds nobody there); one box from 'whole' and from the constant-head YOLO on any non-empty frame."""
    if height == 0 or width == 0:
        return 0
    return 0 if "hog" in detector else 1


_CHILD = r"""
import json, sys
import numpy as np
from goatpose_edge.detection import make_detector

yolo_path, cases = sys.argv[1], json.loads(sys.argv[2])
detectors = {}
for index, name, height, width in cases:
    if name not in detectors:
        spec = name.split(":", 1)[1] if name.startswith("reuse:") else name
        every = 3 if name.startswith("reuse:") else 1
        detectors[name] = make_detector(yolo_path if spec == "yolo" else spec, every=every)
    print(json.dumps({"case": index, "phase": "start"}), flush=True)
    try:
        counts = []
        for _ in range(4):  # reuse: fresh, reused, reused, fresh
            found = detectors[name].detect(np.zeros((height, width, 3), np.uint8))
            if hasattr(detectors[name], "observe"):
                detectors[name].observe([])
            counts.append(len(found))
            assert found.boxes.shape == (len(found), 4) and found.boxes.dtype == np.float32
            assert found.scores.dtype == np.float32 and np.isfinite(found.boxes).all()
        result = {"case": index, "counts": counts}
    except Exception as exc:
        result = {"case": index, "error": "{}: {}".format(type(exc).__name__, exc)}
    print(json.dumps(result), flush=True)
"""


@pytest.fixture(scope="module")
def yolo_path(tmp_path_factory):
    return _head_model(str(tmp_path_factory.mktemp("yolo") / "det.onnx"), _rows("yolov8"))


@pytest.fixture(scope="module")
def child_results(yolo_path):
    """Runs every (detector, shape) case in child processes: one process for all of them while none crashes; a case
    that kills its process is recorded with the exit status and the rest go to a fresh process."""
    cases = [[i, d, h, w] for i, (d, (h, w)) in enumerate((d, s) for d in DETECTORS for s in SHAPES)]
    results, remaining = {}, cases
    while remaining:
        run = subprocess.run([sys.executable, "-c", _CHILD, yolo_path, json.dumps(remaining)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        started = None
        for line in run.stdout.splitlines():
            record = json.loads(line)
            if record.get("phase") == "start":
                started = record["case"]
            else:
                results[record["case"]] = record
                started = None
        if run.returncode == 0:
            break
        if started is None:  # died outside a case (e.g. at import): every remaining case fails with it
            for case in remaining:
                results.setdefault(case[0], {"crash": run.returncode, "stderr": run.stderr[-500:]})
            break
        results[started] = {"crash": run.returncode, "stderr": run.stderr[-500:]}
        remaining = [case for case in remaining if case[0] > started]
    return {(d, h, w): results.get(i, {"missing": True}) for i, d, h, w in cases}


@pytest.mark.parametrize("shape", SHAPES, ids=["{}x{}".format(h, w) for h, w in SHAPES])
@pytest.mark.parametrize("detector", DETECTORS)
def test_no_crash_and_nobody_on_frames_too_small(child_results, detector, shape):
    result = child_results[(detector,) + shape]
    assert "crash" not in result, "the process died (exit {}): {}".format(result.get("crash"), result.get("stderr"))
    assert "error" not in result, result["error"]
    assert result["counts"] == [expected_count(detector, *shape)] * 4, result


class _SpyHOG:
    """Stands in for cv2.HOGDescriptor: records the images it is given and finds one 64x128 person at (8, 16)."""
    winSize = (64, 128)

    def __init__(self):
        self.images = []

    def detectMultiScale(self, image, **kwargs):
        self.images.append(image.shape)
        return np.array([[8, 16, 64, 128]]), np.array([1.0])


@pytest.mark.parametrize("max_width, shape, runs, box", [
    (1280, (128, 64), (128, 64), [8, 16, 64, 128]),  # exactly the window
    (1280, (127, 64), None, None), (1280, (128, 63), None, None), (1280, (1, 1), None, None),
    (1280, (300, 2560), (150, 1280), [16, 32, 128, 256]),  # halved: boxes come back in frame pixels
    (1280, (250, 2560), None, None),  # 125 rows once halved: below the window
    (640, (300, 640), (300, 640), [8, 16, 64, 128]),
    (640, (300, 1280), (150, 640), [16, 32, 128, 256]),
    (64, (200, 65), (197, 64), None),
    (64, (129, 65), None, None),  # 129 rows, but 127 once scaled to 64 wide
])
def test_hog_runs_only_on_frames_that_cover_its_window_after_downscale(max_width, shape, runs, box):
    detector = HOGDetector(max_width=max_width)
    detector.hog = _SpyHOG()
    found = detector.detect(np.zeros(shape + (3,), np.uint8))
    if runs is None:
        assert detector.hog.images == [] and len(found) == 0
        return
    assert detector.hog.images == [runs + (3,)] and len(found) == 1
    if box is not None:
        np.testing.assert_allclose(found.boxes[0], box, rtol=1e-3)


def _variants(image):
    """The same picture as grayscale [H, W] and [H, W, 1], BGRA, 16-bit BGR and 16-bit gray."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 7  # alpha is dropped, not blended
    return {"gray": gray, "gray1": gray[..., None], "bgra": bgra,
            "bgr16": image.astype(np.uint16) * 257, "gray16": gray.astype(np.uint16) * 257}


@pytest.fixture(scope="module")
def person_image(shared_data):
    # HOG finds a person in this photo both in colour and in grey
    return cv2.imread(os.path.join(shared_data, "coco_sample", "000000196141.jpg"))


@pytest.mark.parametrize("kind", ["gray", "gray1", "bgra", "bgr16", "gray16"])
def test_hog_converts_other_pixel_formats_to_8_bit_bgr(person_image, kind):
    detector = HOGDetector()
    frame = _variants(person_image)[kind]
    reference = person_image if kind in ("bgra", "bgr16") else cv2.cvtColor(_variants(person_image)["gray"],
                                                                           cv2.COLOR_GRAY2BGR)
    expected, found = detector.detect(reference), detector.detect(frame)
    assert len(expected) >= 1  # a real person: the comparison means something
    np.testing.assert_allclose(found.boxes, expected.boxes)
    np.testing.assert_allclose(found.scores, expected.scores)


@pytest.mark.parametrize("kind", ["gray", "gray1", "bgra", "bgr16", "gray16"])
def test_yolo_and_whole_convert_other_pixel_formats(yolo_path, kind):
    image = np.random.RandomState(0).randint(0, 255, (150, 100, 3)).astype(np.uint8)
    frame = _variants(image)[kind]
    whole = WholeFrame().detect(frame)
    np.testing.assert_array_equal(whole.boxes, [[0, 0, 100, 150]])
    detector = YoloDetector(yolo_path)
    try:
        reference = image if kind in ("bgra", "bgr16") else cv2.cvtColor(_variants(image)["gray"], cv2.COLOR_GRAY2BGR)
        seen = []
        infer = detector.runner.infer
        detector.runner.infer = lambda batch: (seen.append(batch), infer(batch))[1]
        detector.detect(reference)
        detector.detect(frame)
        np.testing.assert_array_equal(seen[0], seen[1])  # the network sees the same input
    finally:
        detector.close()


@pytest.mark.parametrize("frame", [np.zeros((200, 100, 3), np.float32), np.zeros((200, 100, 3), np.int16),
                                   np.zeros((200, 100, 5), np.uint8), np.zeros((2, 200, 100, 3), np.uint8), None],
                         ids=["float32", "int16", "5-channel", "4-d", "None"])
@pytest.mark.parametrize("spec", ["hog", "whole", "reuse"])
def test_non_images_are_refused_in_one_line(frame, spec):
    detector = KeypointBoxReuse(WholeFrame(), 2) if spec == "reuse" else make_detector(spec)
    with pytest.raises(ImageError) as info:
        detector.detect(frame)
    assert isinstance(info.value, GoatPoseError) and "\n" not in str(info.value)


TINY = ((1, 1), (200, 20), (24, 200))  # (height, width)


@pytest.mark.parametrize("detector, persons", [
    ("hog", lambda height, width: []),
    ("whole", lambda height, width: [[0.0, 0.0, float(width), float(height)]]),
])
def test_tiny_images_pass_the_whole_pose_command(detector, persons, tmp_path):
    """`goatpose pose` on 1x1, 20x200 and 200x24 images: exit 0, nobody for HOG, one whole-frame person for 'whole'."""
    from tests.helpers import stand_in_pose_onnx

    pose = stand_in_pose_onnx(str(tmp_path / "pose.onnx"), [(np.full((17, 3, 4, 4), 0.01), {"strides": [4, 4]})])
    images = []
    for height, width in TINY:
        images.append(str(tmp_path / "{}x{}.png".format(width, height)))
        cv2.imwrite(images[-1], np.full((height, width, 3), 90, np.uint8))
    run = subprocess.run([sys.executable, "-m", "goatpose_edge", "pose"] + images + ["--pose", pose, "--detector",
                                                                                     detector],
                         cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["image"] for line in lines] == images
    assert [[p["box"] for p in line["persons"]] for line in lines] == [persons(h, w) for h, w in TINY]
    assert all(len(p["keypoints"]) == 17 for line in lines for p in line["persons"])