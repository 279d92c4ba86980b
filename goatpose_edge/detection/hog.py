"""OpenCV's HOG + linear SVM people detector: the embedded default, no model file needed."""

import cv2
import numpy as np

from goatpose_edge.detection.base import Detections, Detector, detector_frame, nms_boxes


class HOGDetector(Detector):
    """Dalal-Triggs pedestrians (upright, >= ~64x128 px). Frames wider than ``max_width`` are downscaled first.

    HOG scores are SVM margins, not probabilities; they are squashed with a sigmoid to rank and rescore persons.
    A frame smaller than the 64x128 window once downscaled has no persons: it is never given to OpenCV, whose
    ``detectMultiScale`` corrupts the heap (abort, segfault) or asserts on such frames.
    """

    def __init__(self, max_width: int = 1280, hit_threshold: float = 0.0, scale: float = 1.05,
                 iou_threshold: float = 0.45):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.window = tuple(int(v) for v in self.hog.winSize)  # (width, height): (64, 128)
        self.max_width = max_width
        self.hit_threshold = hit_threshold
        self.scale = scale
        self.iou_threshold = iou_threshold

    def detect(self, frame: np.ndarray) -> Detections:
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        height, width = image.shape[:2]
        factor = min(1.0, self.max_width / float(width)) if self.max_width else 1.0
        size = (max(1, int(round(width * factor))), max(1, int(round(height * factor)))) if factor < 1 else (
            width, height)
        if size[0] < self.window[0] or size[1] < self.window[1]:
            return Detections.empty()
        if size != (width, height):
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        rects, weights = self.hog.detectMultiScale(image, hitThreshold=self.hit_threshold, winStride=(8, 8),
                                                   padding=(8, 8), scale=self.scale)
        if len(rects) == 0:
            return Detections.empty()
        boxes = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes *= np.array([width / float(size[0]), height / float(size[1])] * 2, np.float32)
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        return nms_boxes(boxes, scores, 0.0, self.iou_threshold)
