"""Top-down pose estimation on frames: detect persons, crop, run the pose model in batches, decode, rescore, NMS.

    with load_runner("export/goatpose-bl_256x192.onnx") as runner:
        estimator = TopDownPoseEstimator(HOGDetector(), runner, flip=True)
        persons = estimator(frame_bgr)          # [Person(box, score, box_score, keypoints [17, 3])]

Odd input, defined (``imagefile.to_bgr8``): a grayscale [H, W] or [H, W, 1] frame is expanded to BGR, gray + alpha
and BGRA frames lose alpha, 16-bit frames keep their top 8 bits, an empty frame gives no persons, ``None`` or a
non-image raises ``FrameError``. Boxes with a zero, negative or non-finite size, and boxes wholly outside the frame,
are dropped; boxes partly outside are kept (the crop is black outside the frame, as in HRNet). Keypoints are in
frame pixels and may lie outside the frame for persons cut by its border.
"""

import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from goatpose_edge.codec import (PIXEL_STD, HeatmapCodec, box_to_center_scale, crop_person, merge_flip, normalize_crops,
                                 oks_nms, rescore)
from goatpose_edge.timing import NullTimer
from goatpose_edge.detection.base import Detections, Detector
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.imagefile import ImageError, to_bgr8
from goatpose_edge.runtime.base import infer_chunked


class FrameError(GoatPoseError, ValueError):
    """Something that is not an image was given as a frame."""


def _round(value, digits: int) -> float:
    """``round`` for JSON: a tiny negative rounds to 0.0, never -0.0."""
    return round(float(value), digits) + 0.0


@dataclass
class Person:
    box: np.ndarray  # [4] (x, y, w, h) in frame pixels, as detected
    score: float  # instance score: box score x mean keypoint score above 0.2 (HRNet's rescoring)
    box_score: float  # the detector's score
    keypoints: np.ndarray  # [K, 3] (x, y, score) in frame pixels

    def to_dict(self, clamp_to=None) -> dict:
        """JSON-ready fields; ``clamp_to`` (a frame shape) clamps the keypoints into that frame."""
        points = self.keypoints
        if clamp_to is not None:
            points = points.copy()
            np.clip(points[:, 0], 0, clamp_to[1] - 1, out=points[:, 0])
            np.clip(points[:, 1], 0, clamp_to[0] - 1, out=points[:, 1])
        return {"box": [_round(v, 2) for v in self.box], "score": _round(self.score, 4),
                "box_score": _round(self.box_score, 4),
                "keypoints": [[_round(x, 2), _round(y, 2), _round(s, 4)] for x, y, s in points]}


@dataclass
class Crops:
    """Person crops of one frame, ready for the pose model."""

    detections: Detections  # the N usable boxes, best first
    centers: np.ndarray  # [N, 2] crop centres in frame pixels
    scales: np.ndarray  # [N, 2] crop sizes in units of PIXEL_STD pixels (HRNet's scale)
    batch: np.ndarray  # [N, 3, H, W] float32 network input

    def __len__(self) -> int:
        return len(self.batch)


def as_bgr(frame) -> np.ndarray:
    """A frame as uint8 BGR [H, W, 3]: ``imagefile.to_bgr8``, the conversion the detectors use too."""
    try:
        return to_bgr8(frame, "a frame")
    except ImageError as exc:
        raise FrameError(str(exc)) from exc


def usable_boxes(detections: Detections, frame_shape) -> np.ndarray:
    """[M] bool: the boxes with finite, positive sizes that overlap the frame."""
    boxes, scores = detections.boxes, detections.scores
    height, width = frame_shape[:2]
    ok = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    ok &= (boxes[:, 0] < width) & (boxes[:, 1] < height)
    ok &= (boxes[:, 0] + boxes[:, 2] > 0) & (boxes[:, 1] + boxes[:, 3] > 0)
    return ok


def valid_boxes(detections: Detections, frame_shape) -> Detections:
    """Drop boxes with non-finite or non-positive sizes and boxes that miss the frame entirely."""
    ok = usable_boxes(detections, frame_shape)
    return Detections(detections.boxes[ok], detections.scores[ok])


class TopDownPoseEstimator:
    """BGR frame in, persons out: ``detector`` boxes -> ``pose_runner`` heatmaps (batched) -> decoded keypoints.

    ``flip`` averages in the mirrored crops (skipped when the artefact merges the flip in its graph);
    ``post_process`` is the heatmap decoding ("quarter", "dark" or "none"/None) of ``codec``, the ``HeatmapCodec``
    of the runner's contract; ``oks_nms_threshold`` (None: off) removes duplicate persons as HRNet's evaluation does;
    ``max_batch`` caps persons per runner call (default: the runner's largest batch, or ``DEFAULT_MAX_BATCH`` for a
    dynamic-batch artefact: memory stays bounded in a crowd, and on a CPU batches beyond ~8 run no faster per person);
    ``timer`` (a ``timing.StageTimer``) receives the time of each stage: detect, preprocess, infer (or the
    runner's copy_in / infer / copy_out when it splits its call), postprocess.
    """

    def __init__(self, detector: Detector, pose_runner, flip: bool = False, post_process: Optional[str] = "quarter",
                 oks_nms_threshold: Optional[float] = 0.9, max_batch: Optional[int] = None, timer=None):
        self.detector = detector
        self.runner = pose_runner
        self.contract = pose_runner.pose_contract()  # a runner without a contract is refused in one line
        self.flip = flip and not self.contract.flip_merged
        self.codec = HeatmapCodec.from_contract(self.contract, post_process=post_process)
        self.oks_nms_threshold = oks_nms_threshold
        self.max_batch = max_batch
        self.timer = timer if timer is not None else NullTimer()

    def infer_chunked(self, batch: np.ndarray) -> np.ndarray:
        """Network input [N, 3, H, W] -> heatmaps [N, K, h, w] in chunks the runner's profile takes (at most
        ``max_batch``), timed: ``runtime.base.infer_chunked``."""
        return infer_chunked(self.runner, batch, self.max_batch, self._timed_infer)

    def _timed_infer(self, chunk: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        heatmaps = self.runner.infer(chunk)
        self.runner.synchronize()
        elapsed = time.perf_counter() - start
        stages = self.runner.last_stages
        if stages:  # the device's own split; the host time around it (API calls, sync) counts as infer
            self.timer.add("copy_in", stages["copy_in"])
            self.timer.add("infer", max(0.0, elapsed - stages["copy_in"] - stages["copy_out"]))
            self.timer.add("copy_out", stages["copy_out"])
        else:
            self.timer.add("infer", elapsed)
        return heatmaps

    def heatmaps(self, batch: np.ndarray) -> np.ndarray:
        """``infer_chunked``, merged with the mirrored batch's heatmaps when flip testing in numpy."""
        heatmaps = self.infer_chunked(batch)
        if self.flip:
            mirrored = self.infer_chunked(np.ascontiguousarray(batch[:, :, :, ::-1]))
            with self.timer("postprocess"):
                heatmaps = merge_flip(heatmaps, mirrored, self.contract.flip_pairs)
        if not np.isfinite(heatmaps).all():  # NaN keypoints would pass as results (and are not JSON)
            raise GoatPoseError("{} output NaN/Inf heatmaps: its weights (or its engine) are broken; check it with "
                                "`goatpose verify`".format(self.runner.path))
        return heatmaps

    def preprocess(self, frame: np.ndarray, detections: Detections) -> "Crops":
        """The valid boxes of ``detections`` on a BGR frame [H, W, 3] cropped and normalised: ``Crops`` with a
        network batch [N, 3, H, W] float32 (N = 0 when no box is usable)."""
        detections = valid_boxes(detections, frame.shape)
        height, width = self.contract.input_size
        if len(detections) == 0:
            return Crops(detections, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32),
                         np.zeros((0, 3, height, width), np.float32))
        with self.timer("preprocess"):
            centers, scales, crops = [], [], []
            for box in detections.boxes:
                center, scale = box_to_center_scale(box, self.contract.aspect_ratio)
                centers.append(center)
                scales.append(scale)
                crops.append(crop_person(frame, center, scale, self.contract))
            batch = normalize_crops(np.stack(crops), self.contract)  # [N, 3, H, W]
        return Crops(detections, np.stack(centers), np.stack(scales), batch)

    def postprocess(self, crops: "Crops", heatmaps: np.ndarray) -> List[Person]:
        """Heatmaps [N, K, h, w] of ``crops`` -> persons in frame pixels: decoded, rescored, OKS-NMS'd."""
        return self.postprocess_kept(crops, heatmaps)[0]

    def postprocess_kept(self, crops: "Crops", heatmaps: np.ndarray):
        """``postprocess`` and, per person, the index of the crop it came from (OKS-NMS drops some)."""
        if len(crops) == 0:
            return [], []
        detections = crops.detections
        with self.timer("postprocess"):
            keypoints, maxvals = self.codec.decode(heatmaps, crops.centers, crops.scales)
            keypoints = np.concatenate([keypoints, maxvals], axis=2)  # [N, K, 3]
            scores = rescore(detections.scores, maxvals[..., 0])
            keep = range(len(scores))
            if self.oks_nms_threshold is not None and len(scores) > 1:
                areas = [float(np.prod(s * PIXEL_STD)) for s in crops.scales]
                keep = oks_nms(keypoints, scores, areas, self.oks_nms_threshold)
        keep = list(keep)
        return [Person(detections.boxes[i], float(scores[i]), float(detections.scores[i]), keypoints[i])
                for i in keep], keep

    def estimate(self, frame: np.ndarray, detections: Detections) -> List[Person]:
        """Poses for given detections on a BGR frame: ``preprocess`` -> ``heatmaps`` -> ``postprocess``."""
        crops = self.preprocess(frame, detections)
        if len(crops) == 0:
            return []
        return self.postprocess(crops, self.heatmaps(crops.batch))

    def __call__(self, frame) -> List[Person]:
        frame = as_bgr(frame)
        if frame.size == 0:
            return []
        with self.timer("detect"):
            detections = self.detector.detect(frame)
        persons = self.estimate(frame, detections)
        if hasattr(self.detector, "observe"):  # a detector that follows persons keeps those whose tracks go on
            persons = self.detector.observe(persons)
        return persons
