"""Person detection for the top-down pipeline (device side: numpy + OpenCV; models through the runners).

    hog          OpenCV's HOG people detector, the embedded default (no files); hog:W runs it on frames scaled
                 to W pixels wide (default 1280: faster when smaller, but small persons are missed)
    FILE.onnx    a YOLOX / YOLOv5 / YOLOv8 detector (``YoloDetector``), as .onnx or a TensorRT engine
    whole        the whole frame as one person
    figures      the stick figures of a synthetic scene (``synthetic.FigureDetector``); figures:MS sleeps MS
                 milliseconds per frame, a detector slower than the pose model for testing asynchronous detection
    COCO JSON    boxes from detection results, for evaluation (``load_coco_detections``)
``KeypointBoxReuse`` runs any of them every N frames and follows persons by their keypoints in between.
"""

import os

from goatpose_edge.detection.base import Detections, Detector, DetectorError, WholeFrame, nms_boxes
from goatpose_edge.detection.coco_results import load_coco_detections
from goatpose_edge.detection.hog import HOGDetector
from goatpose_edge.detection.reuse import KeypointBoxReuse, keypoint_box
from goatpose_edge.detection.yolo import YoloDetector

__all__ = ["Detections", "Detector", "DetectorError", "HOGDetector", "KeypointBoxReuse", "WholeFrame", "YoloDetector",
           "keypoint_box", "load_coco_detections", "make_detector", "nms_boxes"]


def make_detector(spec: str = "hog", every: int = 1, **options) -> Detector:
    """'hog', 'hog:W', 'whole', 'figures', 'figures:MS' or a detector file path -> a Detector (run every ``every``
    frames when > 1)."""
    if spec == "hog":
        detector = HOGDetector()
    elif spec.startswith("hog:"):
        width = spec[4:]
        if not width.isdigit() or int(width) < 64:
            raise DetectorError("detector {!r}: hog:W needs a width of at least 64 pixels, e.g. hog:640".format(spec))
        detector = HOGDetector(max_width=int(width))
    elif spec == "whole":
        detector = WholeFrame()
    elif spec == "figures" or spec.startswith("figures:"):
        from goatpose_edge.detection.figures import FigureDetector

        delay = spec[len("figures:"):] if spec != "figures" else "0"
        if not delay or delay.strip("0123456789"):  # str.isdigit would pass "²"
            raise DetectorError("detector {!r}: figures:MS needs a delay in whole milliseconds >= 0, e.g. "
                                "figures:40".format(spec))
        detector = FigureDetector(delay_s=int(delay) / 1000.0)
    elif os.path.isfile(spec):
        detector = YoloDetector(spec, **options)
    else:
        raise DetectorError("detector {!r} is neither 'hog', 'hog:W', 'whole' nor an existing model file (synthetic "
                            "scenes: 'figures' or 'figures:MS')".format(spec))
    return KeypointBoxReuse(detector, every) if every > 1 else detector
