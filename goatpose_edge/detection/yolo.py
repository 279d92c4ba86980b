"""YOLO-family person detectors (YOLOX, YOLOv5, YOLOv8) as ONNX files or engines, through the runners.

Layouts of the (first) output, for an input of H x W and A = sum over strides 8/16/32 of (H/s)(W/s) cells:

    yolox    [1, A, 5 + C]    raw head (official export): (x, y) grid offsets, log (w, h), sigmoid obj, classes
    yolov5   [1, 3A, 5 + C]   (cx, cy, w, h) in input pixels, obj, class scores
    yolov8   [1, 4 + C, A]    (cx, cy, w, h) in input pixels, class scores (no obj)

Preprocessing follows each family: YOLOX takes BGR 0..255 letterboxed at the top-left, YOLOv5/v8 RGB / 255
letterboxed centred, both padded with 114. Persons are class 0; boxes come back in frame pixels after NMS.
Any non-empty frame is letterboxed (a tiny one is scaled up, a side never below one pixel); an empty one has no
persons. A file that is not a readable ONNX, or a model that is not a YOLO detector, raises one ``DetectorError``.
"""

from typing import Optional, Tuple

import os

import cv2
import numpy as np

from goatpose_edge.detection.base import Detections, Detector, DetectorError, detector_frame, nms_boxes
from goatpose_edge.errors import GoatPoseError

LAYOUTS = ("yolox", "yolov5", "yolov8")
STRIDES = (8, 16, 32)


def letterbox(frame: np.ndarray, size: Tuple[int, int], centred: bool) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """Resize keeping aspect into (H, W), pad with 114: (image [H, W, 3] uint8, ratio, (pad_x, pad_y))."""
    height, width = size
    ratio = min(height / float(frame.shape[0]), width / float(frame.shape[1]))
    new_w = min(width, max(1, int(round(frame.shape[1] * ratio))))
    new_h = min(height, max(1, int(round(frame.shape[0] * ratio))))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = ((width - new_w) // 2, (height - new_h) // 2) if centred else (0, 0)
    canvas = np.full((height, width, 3), 114, np.uint8)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    return canvas, ratio, (pad_x, pad_y)


def guess_layout(output_shape, input_size: Tuple[int, int]) -> str:
    """The layout of an output [1, a, b] for an input (H, W); raises DetectorError when none fits."""
    cells = sum((input_size[0] // s) * (input_size[1] // s) for s in STRIDES)
    if len(output_shape) == 3 and output_shape[0] == 1:
        _, a, b = output_shape
        if b == cells and 5 <= a < b:
            return "yolov8"
        if a == cells and b >= 6:
            return "yolox"
        if a == 3 * cells and b >= 6:
            return "yolov5"
    raise DetectorError("unknown detector output layout {} for input {}x{}: expected YOLOX [1, {}, 5+C], YOLOv5 "
                        "[1, {}, 5+C] or YOLOv8 [1, 4+C, {}]".format(list(output_shape), input_size[0], input_size[1],
                                                                    cells, 3 * cells, cells))


def decode_yolo(output: np.ndarray, layout: str, input_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """One image's output -> (boxes [A, 4] as (cx, cy, w, h) in input pixels, person scores [A])."""
    if layout == "yolov8":
        rows = output[0].T  # [A, 4 + C]
        return rows[:, :4], rows[:, 4]
    rows = output[0].astype(np.float32).copy()  # [A, 5 + C]
    if layout == "yolox":
        grids, strides = [], []
        for stride in STRIDES:
            gh, gw = input_size[0] // stride, input_size[1] // stride
            ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
            grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
            strides.append(np.full((gh * gw, 1), stride))
        grid, stride = np.concatenate(grids), np.concatenate(strides)
        rows[:, :2] = (rows[:, :2] + grid) * stride
        rows[:, 2:4] = np.exp(rows[:, 2:4]) * stride
    return rows[:, :4], rows[:, 4] * rows[:, 5]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def check_detector_file(path: str) -> None:
    """One ``DetectorError`` line for a detector file that is missing, unreadable, empty or (for .onnx) not an ONNX
    model at all; whether a valid ONNX is a detector is found out when it loads."""
    if not os.path.isfile(path):
        raise DetectorError("detector file not found: {}".format(path))
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except (OSError, IOError) as exc:
        raise DetectorError("cannot read detector {}: {}".format(path, exc.strerror or exc)) from exc
    if empty:
        raise DetectorError("detector {} is an empty file (0 bytes): give a YOLOX, YOLOv5 or YOLOv8 .onnx, or "
                            "'hog'".format(path))
    if path.lower().endswith(".onnx"):
        from goatpose_edge.artefact.onnx_meta import read_metadata

        try:
            read_metadata(path)  # parses the protobuf's top level without the onnx package
        except GoatPoseError as exc:
            raise DetectorError("detector {} is not a valid ONNX file (truncated, or not a model at all): give a "
                                "YOLOX, YOLOv5 or YOLOv8 .onnx, or 'hog'".format(path)) from exc


class YoloDetector(Detector):
    """A YOLO ONNX file (onnxruntime) or engine (TensorRT) used as a person detector."""

    def __init__(self, path: str, layout: Optional[str] = None, score_threshold: float = 0.3,
                 iou_threshold: float = 0.45, **runner_options):
        if layout is not None and layout not in LAYOUTS:
            raise DetectorError("unknown detector layout {!r}; choose one of {}".format(layout, ", ".join(LAYOUTS)))
        self.runner = None
        check_detector_file(path)
        try:
            self._load(path, layout, runner_options)
        except Exception as exc:
            if self.runner is not None:
                self.close()
            if isinstance(exc, GoatPoseError):
                raise
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            raise DetectorError("{} is not a usable ONNX detector ({}): give a YOLOX, YOLOv5 or YOLOv8 .onnx with "
                                "one image input [1, 3, H, W], or 'hog'".format(path, _first_line(exc))) from exc
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def _load(self, path: str, layout: Optional[str], runner_options: dict) -> None:
        from goatpose_edge.runtime import load_runner

        self.runner = load_runner(path, **runner_options)
        if self.runner.contract is not None:  # every checkpoint, export and engine of this toolkit is a pose model
            raise DetectorError("{} is a pose model ({}), not a person detector: give a YOLOX, YOLOv5 or YOLOv8 "
                                ".onnx, or 'hog'".format(path, self.runner.contract.name))
        self.runner.activate()
        shape = tuple(self.runner.input_shape or ())
        if len(shape) != 4 or shape[1] not in (3, None) or shape[2] is None or shape[3] is None:
            raise DetectorError("{} takes input {}; a detector needs a fixed [N, 3, H, W] size".format(
                path, list(shape)))
        _, _, height, width = shape
        self.input_size = (height, width)
        probe = np.asarray(self.runner.infer(np.zeros((1, 3, height, width), np.float32)))
        try:
            self.layout = layout or guess_layout(probe.shape, self.input_size)
        except DetectorError as exc:
            raise DetectorError("{}: {}".format(path, exc)) from exc

    def preprocess(self, frame: np.ndarray) -> Tuple[np.ndarray, float, Tuple[int, int]]:
        """Frame -> (input [1, 3, H, W] float32, ratio, padding) for this family."""
        image, ratio, pad = letterbox(frame, self.input_size, centred=self.layout != "yolox")
        if self.layout == "yolox":
            batch = image.astype(np.float32)  # BGR, 0..255
        else:
            batch = image[..., ::-1].astype(np.float32) / 255.0  # RGB, 0..1
        return np.ascontiguousarray(batch.transpose(2, 0, 1)[None]), ratio, pad

    def detect(self, frame: np.ndarray) -> Detections:
        image = detector_frame(frame)
        if image is None:
            return Detections.empty()
        batch, ratio, (pad_x, pad_y) = self.preprocess(image)
        centres, scores = decode_yolo(self.runner.infer(batch), self.layout, self.input_size)
        mask = scores >= self.score_threshold
        centres, scores = centres[mask], scores[mask]
        boxes = np.stack([(centres[:, 0] - centres[:, 2] / 2 - pad_x) / ratio,
                          (centres[:, 1] - centres[:, 3] / 2 - pad_y) / ratio,
                          centres[:, 2] / ratio, centres[:, 3] / ratio], axis=1) if len(scores) else np.zeros((0, 4))
        return nms_boxes(boxes.astype(np.float32), scores, self.score_threshold, self.iou_threshold)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.deactivate()
