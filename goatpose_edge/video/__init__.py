"""Video pose inference on the device: sources (files, cameras, URLs, Jetson CSI, GStreamer), a capture thread with a
bounded queue, IoU tracking, overlay video and JSONL outputs that are always finalised. Device side: numpy, OpenCV.

    goatpose video input.mp4 --pose engines/goatpose-bl.engine -o out.mp4 --jsonl out.jsonl
"""
