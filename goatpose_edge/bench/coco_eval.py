"""COCO keypoint evaluation with HRNet's protocol, for any runner (so FP32/FP16/INT8 deltas are measured alike).

Protocol (HRNet ``lib/dataset/coco.py``, ``test.py``): person boxes from a detection-results file (all scores, as
HRNet's ``image_thre = 0.0``) or the ground-truth boxes of persons with at least one labelled keypoint (score 1);
each box cropped with the codec's affine, heatmaps decoded (``quarter`` offset, or DARK), flip test optional;
instance score = box score x mean keypoint score above 0.2; OKS-NMS at 0.9 per image; pycocotools ``keypoints``.
"""

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from goatpose_edge.errors import DependencyError, GoatPoseError

STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def _coco_api():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise DependencyError("COCO evaluation needs pycocotools: pip install 'goatpose-edge[eval]'") from exc
    return COCO, COCOeval


def resolve_coco(root: str, ann: Optional[str] = None):
    """(annotation file, image folder) of a COCO root: ``ann`` or ``ROOT/annotations/person_keypoints_val2017.json``;
    images in ``ROOT/val2017``, ``ROOT/images/val2017`` or ``ROOT`` itself (whichever holds the first image)."""
    if not os.path.isdir(root):
        raise GoatPoseError("COCO root {} is not a folder".format(root))
    ann = ann or os.path.join(root, "annotations", "person_keypoints_val2017.json")
    if not os.path.isfile(ann):
        raise GoatPoseError("annotation file {} not found (pass --ann FILE)".format(ann))
    return ann, root


def load_coco(ann_file: str):
    COCO, _ = _coco_api()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(ann_file)
    except (ValueError, KeyError, TypeError) as exc:
        raise GoatPoseError("{} is not a COCO annotation file: {}".format(ann_file, exc)) from exc


def image_path(coco_root: str, file_name: str) -> str:
    for folder in ("val2017", os.path.join("images", "val2017"), ""):
        path = os.path.join(coco_root, folder, file_name)
        if os.path.isfile(path):
            return path
    raise GoatPoseError("image {} not found under {} (looked in val2017/, images/val2017/ and the root)".format(
        file_name, coco_root))


def clean_box(bbox, width: int, height: int):
    """HRNet's ``clean_bbox``: (x, y, w, h) clipped to the image (inclusive pixel ends), None when nothing is left."""
    x, y, w, h = bbox
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(width - 1.0, x1 + max(0.0, w - 1)), min(height - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def ground_truth_detections(coco, image_id: int):
    """Clean person boxes of an image's non-crowd annotations with at least one labelled keypoint and a positive
    area (HRNet's GT-box set), score 1."""
    from goatpose_edge.detection.base import Detections

    info = coco.loadImgs([image_id])[0]
    boxes = []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
        box = clean_box(ann["bbox"], info["width"], info["height"])
        if ann.get("num_keypoints", 0) > 0 and ann.get("area", 1) > 0 and box is not None and box[2] > 0 \
                and box[3] > 0:
            boxes.append(box)
    return Detections.sorted(boxes, [1.0] * len(boxes))


def evaluate_keypoints(coco, results: List[dict], image_ids: Optional[List[int]] = None) -> Dict[str, float]:
    """pycocotools keypoint stats {AP, AP50, ..., ARL} of COCO-format ``results`` on ``image_ids`` (default all)."""
    _, COCOeval = _coco_api()
    if not results:  # loadRes refuses an empty list; nothing predicted scores zero
        return {name: 0.0 for name in STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(results), "keypoints")
        evaluator.params.useSegm = None
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: round(float(value), 4) for name, value in zip(STAT_NAMES, evaluator.stats)}


@dataclass
class EvalResult:
    stats: Dict[str, float]
    images: int
    boxes: int
    persons: int  # after OKS-NMS
    seconds: float
    settings: Dict[str, object] = field(default_factory=dict)
    results: List[dict] = field(default_factory=list)  # COCO results format

    def line(self) -> str:
        return "  ".join("{} {:.3f}".format(name, self.stats[name]) for name in ("AP", "AP50", "AP75", "APM", "APL",
                                                                                    "AR"))

    def to_dict(self) -> dict:
        return {"stats": self.stats, "images": self.images, "boxes": self.boxes, "persons": self.persons,
                "seconds": round(self.seconds, 2), "settings": self.settings}


def evaluate_runner(runner, coco_root: str, ann: Optional[str] = None, det_json: Optional[str] = None,
                    flip: bool = True, limit: Optional[int] = None, post_process: Optional[str] = "quarter",
                    progress: bool = True) -> EvalResult:
    """Evaluate a pose runner on COCO; ground-truth boxes unless ``det_json`` gives detection results."""
    import cv2

    from goatpose_edge.detection import Detections, load_coco_detections
    from goatpose_edge.pipeline import TopDownPoseEstimator

    ann_file, root = resolve_coco(coco_root, ann)
    coco = load_coco(ann_file)
    detections = load_coco_detections(det_json) if det_json else None
    image_ids = sorted(coco.getImgIds())
    if limit is not None:
        if limit < 1:
            raise GoatPoseError("--limit must be >= 1, got {}".format(limit))
        image_ids = image_ids[:limit]
    paths = {i: image_path(root, coco.loadImgs([i])[0]["file_name"]) for i in image_ids}  # fail before the slow part
    estimator = TopDownPoseEstimator(None, runner, flip=flip, post_process=post_process, oks_nms_threshold=0.9)
    results, boxes = [], 0
    started = time.perf_counter()
    for image_id in _progress(image_ids, progress, "eval"):
        found = detections.get(image_id, Detections.empty()) if detections is not None else ground_truth_detections(
            coco, image_id)
        boxes += len(found)
        if len(found) == 0:
            continue
        frame = cv2.imread(paths[image_id], cv2.IMREAD_COLOR)
        if frame is None:
            raise GoatPoseError("cannot decode image {}".format(paths[image_id]))
        for person in estimator.estimate(frame, found):
            results.append({"image_id": image_id, "category_id": 1, "score": round(person.score, 6),
                            "keypoints": [round(float(v), 3) for v in person.keypoints.ravel()]})
    seconds = time.perf_counter() - started
    stats = evaluate_keypoints(coco, results, image_ids)
    settings = {"ann": ann_file, "boxes": det_json or "ground truth", "flip": flip, "post_process": post_process,
                "limit": limit, "oks_nms": 0.9, "rescore_threshold": 0.2}
    return EvalResult(stats, len(image_ids), boxes, len(results), seconds, settings, results)


def _progress(items, enabled: bool, label: str):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=label, unit="img", leave=False)


def write_results(path: str, results: List[dict]) -> None:
    from goatpose_edge.fileio import atomic_output

    with atomic_output(path) as tmp_path:
        with open(tmp_path, "w") as f:
            json.dump(results, f)
