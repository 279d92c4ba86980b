"""Fixtures of the synthetic harness tests: the dot model and small scenes, built once per session."""

import cv2
import pytest

from goatpose_edge.synthetic import build_dot_pose_onnx, render_scene, walkers, write_scene


@pytest.fixture(scope="session")
def dot_onnx(tmp_path_factory):
    return build_dot_pose_onnx(str(tmp_path_factory.mktemp("dotpose") / "dotpose.onnx"))


@pytest.fixture(scope="session")
def walkers_scene():
    """(options, [(frame, truth)]) of 24 frames of the walkers preset at 640x360."""
    options = walkers(frames=24)
    return options, list(render_scene(options))


def read_video(path):
    """All frames of a video file, BGR uint8 [H, W, 3] each."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="session")
def walkers_decoded(walkers_scene, tmp_path_factory):
    """{".avi": frames, ".mp4": frames}: the walkers scene written by write_scene and read back with OpenCV."""
    options, _ = walkers_scene
    folder = tmp_path_factory.mktemp("videos")
    out = {}
    for ext in (".avi", ".mp4"):
        video = str(folder / ("walkers" + ext))
        write_scene(video, str(folder / ("walkers" + ext + ".truth.jsonl")), options)
        out[ext] = read_video(video)
    return out
