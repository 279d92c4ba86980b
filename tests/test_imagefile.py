"""``read_image``: real COCO photos read as OpenCV reads them; missing, folder, empty, non-image, truncated and corrupt
files refused in one line each; grayscale, alpha and 16-bit images converted to 8-bit BGR (``to_bgr8``)."""

import ast
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, read_image, to_bgr8

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def coco_jpeg(shared_data):
    return os.path.join(shared_data, "coco_sample", "000000197388.jpg")


@pytest.fixture
def jpeg_bytes(coco_jpeg):
    with open(coco_jpeg, "rb") as f:
        return f.read()


def _refused(path, *words):
    with pytest.raises(ImageError) as info:
        read_image(str(path))
    message = str(info.value)
    assert isinstance(info.value, GoatPoseError) and "\n" not in message and str(path) in message, message
    for word in words:
        assert word in message, message
    return message


def test_reads_a_real_photo_as_opencv_does(coco_jpeg):
    image = read_image(coco_jpeg)
    assert image.dtype == np.uint8 and image.shape == (392, 640, 3)
    np.testing.assert_array_equal(image, cv2.imread(coco_jpeg, cv2.IMREAD_UNCHANGED))


@pytest.mark.parametrize("keep", [0.5, 0.9, -2, -1])
def test_truncated_jpeg_is_refused(jpeg_bytes, tmp_path, keep):
    cut = jpeg_bytes[:int(len(jpeg_bytes) * keep)] if keep > 0 else jpeg_bytes[:keep]
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    if keep == 0.5:  # why the check exists: OpenCV's imread decodes the cut file, its lower part grey
        decoded = cv2.imread(str(path))
        assert decoded is None or (decoded[-10:] == 128).all()
    _refused(path, "truncated or corrupt JPEG")


def test_jpeg_with_data_after_its_end_marker_is_read(jpeg_bytes, tmp_path):
    """A motion photo's video or a camera trailer after FFD9, and zero padding, are not truncation."""
    reference = cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    for name, data in (("trailer.jpg", jpeg_bytes + b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000)),
                       ("padded.jpg", jpeg_bytes + b"\x00" * 64)):
        (tmp_path / name).write_bytes(data)
        np.testing.assert_array_equal(read_image(str(tmp_path / name)), reference)


def test_progressive_jpeg_with_restart_markers_is_read_and_its_truncation_refused(coco_jpeg, tmp_path):
    ok, data = cv2.imencode(".jpg", cv2.imread(coco_jpeg), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1,
                                                            cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    data = data.tobytes()
    (tmp_path / "progressive.jpg").write_bytes(data)
    assert read_image(str(tmp_path / "progressive.jpg")).shape == (392, 640, 3)
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) * 3 // 4])
    _refused(tmp_path / "cut.jpg", "truncated")


def test_png_round_trip_and_truncation(coco_jpeg, tmp_path):
    image = cv2.imread(coco_jpeg)
    ok, data = cv2.imencode(".png", image)
    data = data.tobytes()
    (tmp_path / "full.png").write_bytes(data)
    np.testing.assert_array_equal(read_image(str(tmp_path / "full.png")), image)
    for keep in (len(data) // 2, len(data) - 12, len(data) - 1):  # the last 12 bytes are the IEND chunk
        (tmp_path / "cut.png").write_bytes(data[:keep])
        _refused(tmp_path / "cut.png", "truncated or corrupt PNG")


def test_bad_paths_say_what_is_wrong(tmp_path, jpeg_bytes):
    _refused(tmp_path / "nope.jpg", "image not found")
    _refused(tmp_path, "is a folder")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _refused(tmp_path / "empty.jpg", "empty file (0 bytes)")
    (tmp_path / "notes.jpg").write_text("these are my notes, not a picture\n")
    _refused(tmp_path / "notes.jpg", "not an image OpenCV can decode")
    (tmp_path / "garbage.jpg").write_bytes(jpeg_bytes[:3] + os.urandom(3000) + b"\xff\xd9")  # ends well, decodes not
    _refused(tmp_path / "garbage.jpg", "corrupt JPEG")


def test_grey_alpha_and_16_bit_files_become_8_bit_bgr(tmp_path):
    rng = np.random.RandomState(0)
    bgr = rng.randint(0, 256, (30, 20, 3)).astype(np.uint8)
    gray = bgr[..., 0].copy()
    bgra = np.dstack([bgr, np.full((30, 20), 9, np.uint8)])
    cases = {"gray.png": (gray, np.dstack([gray] * 3)), "bgra.png": (bgra, bgr),
             "gray16.png": (gray.astype(np.uint16) * 256 + 100, np.dstack([gray] * 3)),
             "bgr16.png": (bgr.astype(np.uint16) * 257, bgr), "gray.bmp": (gray, np.dstack([gray] * 3))}
    for name, (written, expected) in cases.items():
        assert cv2.imwrite(str(tmp_path / name), written)
        image = read_image(str(tmp_path / name))
        assert image.dtype == np.uint8 and image.shape == (30, 20, 3), name
        np.testing.assert_array_equal(image, expected, err_msg=name)


def test_to_bgr8():
    bgr = np.zeros((4, 5, 3), np.uint8)
    assert to_bgr8(bgr) is bgr  # no copy for what the pipeline takes already
    two = np.dstack([np.full((4, 5), 7, np.uint8), np.full((4, 5), 200, np.uint8)])  # gray + alpha
    np.testing.assert_array_equal(to_bgr8(two), np.full((4, 5, 3), 7, np.uint8))
    np.testing.assert_array_equal(to_bgr8(np.full((4, 5), 65535, np.uint16)), np.full((4, 5, 3), 255, np.uint8))
    assert to_bgr8(np.zeros((0, 5), np.uint8)).shape == (0, 5, 3)
    assert to_bgr8(np.zeros((3, 0, 4), np.uint16)).shape == (3, 0, 3)
    for bad in (np.zeros((4, 5, 3), np.float32), np.zeros((4, 5, 5), np.uint8), np.zeros((4,), np.uint8), None,
                [[0, 1]]):
        with pytest.raises(ImageError) as info:
            to_bgr8(bad, "the frame")
        assert str(info.value).startswith("the frame") and "\n" not in str(info.value)


def test_python36_syntax_and_no_torch():
    """imagefile runs on the device: Python 3.6 grammar, numpy + OpenCV only."""
    path = os.path.join(REPO_ROOT, "goatpose_edge", "imagefile.py")
    with open(path) as f:
        ast.parse(f.read(), path, **({"feature_version": (3, 6)} if sys.version_info >= (3, 8) else {}))
    probe = "import sys; sys.modules['torch'] = None; import goatpose_edge.imagefile, goatpose_edge.detection"
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert run.returncode == 0, run.stderr
