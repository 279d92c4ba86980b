"""Outputs are finalised atomically: a playable video with the frames written, nothing for nothing, input protected."""

import json
import os

import cv2
import numpy as np
import pytest

from goatpose_edge.fileio import OutputPathError
from goatpose_edge.video.outputs import JsonlSink, OutputError, VideoSink, check_output_path


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_video_sink_writes_a_playable_file(tmp_path, name):
    path = str(tmp_path / name)
    sink = VideoSink(path, 25.0, (64, 48), encoder="opencv")
    for i in range(12):
        sink.write(np.full((48, 64, 3), 20 * i % 256, np.uint8))
        assert not os.path.exists(path)  # only the temporary file exists until close()
    assert sink.close() == path
    capture = cv2.VideoCapture(path)
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (64, 48)
    assert os.listdir(str(tmp_path)) == [name]


def test_no_frames_no_file_and_bad_paths(tmp_path, shared_data):
    path = str(tmp_path / "empty.mp4")
    assert VideoSink(path, 25.0, (64, 48), encoder="opencv").close() is None
    assert os.listdir(str(tmp_path)) == []
    with pytest.raises(OutputError, match="use one of"):
        VideoSink(str(tmp_path / "out.gif"), 25.0, (64, 48))
    video = os.path.join(shared_data, "video", "pedestrians_overhead.avi")
    with pytest.raises(OutputPathError, match="refusing to write output .*: it is the input video"):
        check_output_path(video, video)
    with pytest.raises(OutputPathError, match="does not exist"):
        check_output_path(str(tmp_path / "missing" / "out.mp4"))


def test_jsonl_sink(tmp_path):
    path = str(tmp_path / "poses.jsonl")
    sink = JsonlSink(path)
    sink.write({"frame": 0, "persons": []})
    sink.write({"frame": 1, "persons": [{"id": 3}]})
    assert not os.path.exists(path)
    sink.close()
    assert [json.loads(line)["frame"] for line in open(path)] == [0, 1]


def test_a_run_without_frames_keeps_the_previous_jsonl(tmp_path):
    """A source that decodes no frame must not replace last run's JSONL with an empty file."""
    path = tmp_path / "poses.jsonl"
    path.write_text('{"frame": 0}\n')
    assert JsonlSink(str(path)).close() is None
    assert path.read_text() == '{"frame": 0}\n' and os.listdir(str(tmp_path)) == ["poses.jsonl"]
