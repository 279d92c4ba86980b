"""Source parsing and opening: each kind recognised, the CSI pipeline, one clear line for bad sources."""

import pytest

from goatpose_edge.video.sources import CsiOptions, SourceError, open_capture, parse_source


def test_kinds(shared_data, tmp_path):
    import os

    video = os.path.join(shared_data, "video", "pedestrians_overhead.avi")
    assert (parse_source(video).kind, parse_source(video).live) == ("file", False)
    assert (parse_source("0").kind, parse_source("0").live) == ("camera", True)
    assert parse_source("rtsp://10.0.0.2:8554/cam").kind == "url"
    assert parse_source("HTTP://host/stream.mjpg").kind == "url"
    gst = "videotestsrc ! videoconvert ! video/x-raw, format=BGR ! appsink"
    assert parse_source(gst).kind == "gstreamer" and parse_source(gst).target == gst


def test_csi_pipeline():
    source = parse_source("csi://1", CsiOptions(width=1920, height=1080, fps=30, flip_method=2))
    assert source.kind == "csi" and source.live
    assert source.target.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=(int)1920, "
                                    "height=(int)1080, format=(string)NV12, framerate=(fraction)30/1 ! "
                                    "nvvidconv flip-method=2 !")
    assert source.target.endswith("format=(string)BGR ! appsink drop=true max-buffers=1")


@pytest.mark.parametrize("spec, message", [
    ("", "empty video source"),
    ("csi://front", "use csi://N"),
    ("videotestsrc ! fakesink", "must end in an appsink"),
    ("/no/such/video.mp4", "video not found"),
])
def test_bad_sources(spec, message):
    with pytest.raises(SourceError, match=message):
        parse_source(spec)


def test_a_file_opencv_cannot_decode(tmp_path):
    fake = tmp_path / "broken.avi"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00AVI not really a video" * 10)
    with pytest.raises(SourceError, match="cannot open file .*broken.avi: unknown container or a codec"):
        open_capture(parse_source(str(fake)))
