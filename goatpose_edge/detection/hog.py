"""OpenCV's HOG + linear SVM people detector: the embedded default, no model file needed."""

import cv2
import numpy as np

from goatpose_edge.detection.base import Detections, Detector, nms_boxes


class HOGDetector(Detector):
    """Dalal-Triggs pedestrians (upright, >= ~64x128 px). Frames wider than ``max_width`` are downscaled first.

    HOG scores are SVM margins, not probabilities; they are squashed with a sigmoid to rank and rescore persons.
    """

    def __init__(self, max_width: int = 1280, hit_threshold: float = 0.0, scale: float = 1.05,
                 iou_threshold: float = 0.45):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.max_width = max_width
        self.hit_threshold = hit_threshold
        self.scale = scale
        self.iou_threshold = iou_threshold

    def detect(self, frame: np.ndarray) -> Detections:
        factor = min(1.0, self.max_width / float(frame.shape[1])) if self.max_width else 1.0
        image = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else frame
        rects, weights = self.hog.detectMultiScale(image, hitThreshold=self.hit_threshold, winStride=(8, 8),
                                                   padding=(8, 8), scale=self.scale)
        if len(rects) == 0:
            return Detections.empty()
        boxes = np.asarray(rects, np.float32).reshape(-1, 4) / factor
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        return nms_boxes(boxes, scores, 0.0, self.iou_threshold)
