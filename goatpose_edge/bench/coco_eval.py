"""COCO keypoint evaluation with HRNet's protocol, for any runner (so FP32/FP16/INT8 deltas are measured alike).

Protocol (HRNet ``lib/dataset/coco.py``, ``test.py``): person boxes from a detection-results file (all scores, as
HRNet's ``image_thre = 0.0``) or the ground-truth boxes of persons with at least one labelled keypoint (score 1);
each box cropped with the codec's affine, heatmaps decoded (``quarter`` offset, or DARK), flip test optional;
instance score = box score x mean keypoint score above the codec's rescoring threshold; OKS-NMS per image at the
codec's threshold; pycocotools ``keypoints``. The record holds the thresholds the run used (``hrnet_thresholds``).
"""

import contextlib
import inspect
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from goatpose_edge.coco import (AnnotationError, coco_api, is_id, check_detections, ground_truth_detections,
                                image_path, load_coco, resolve_coco)
from goatpose_edge.errors import GoatPoseError
from goatpose_edge.fileio import Kind

STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def evaluate_keypoints(coco, results: List[dict], image_ids: Optional[List[int]] = None) -> Dict[str, float]:
    """pycocotools keypoint stats {AP, AP50, ..., ARL} of COCO-format ``results`` on ``image_ids`` (default all)."""
    _, COCOeval = coco_api()
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


def hrnet_thresholds() -> Dict[str, float]:
    """HRNet's evaluation thresholds, as the codec applies them by default (one source: ``codec.oks_nms``'s
    ``thresh`` and ``codec.rescore``'s ``in_vis_thre``, which the pipeline's rescoring uses)."""
    from goatpose_edge.codec import oks_nms, rescore

    return {"oks_nms": inspect.signature(oks_nms).parameters["thresh"].default,
            "rescore_threshold": inspect.signature(rescore).parameters["in_vis_thre"].default}


def _check_limit(limit, flag: str = "--limit") -> None:
    if limit is not None and (not is_id(limit) or limit < 1):
        raise GoatPoseError("{} must be a whole number >= 1, got {!r}".format(flag, limit))


@dataclass
class EvalInputs:
    """Everything ``evaluate_runner`` reads before the model runs, checked: annotations, boxes, image paths."""
    ann_file: str
    root: str
    coco: object
    image_ids: List[int]
    paths: Dict[int, str]
    boxes: Dict[int, object]  # image id -> Detections


def prepare_eval(coco_root: str, ann: Optional[str] = None, det_json: Optional[str] = None,
                 limit: Optional[int] = None, limit_flag: str = "--limit") -> EvalInputs:
    """Check and load what an evaluation needs, cheapest first, so bad input fails before any inference
    (``limit_flag``: the option ``limit`` came from, for the messages)."""
    from goatpose_edge.detection import Detections, load_coco_detections

    _check_limit(limit, limit_flag)
    ann_file, root = resolve_coco(coco_root, ann)
    if det_json and not os.path.isfile(det_json):
        raise AnnotationError("detection results not found: {}".format(det_json))
    coco = load_coco(ann_file)
    all_ids = sorted(coco.getImgIds())
    image_ids = all_ids[:limit] if limit is not None else all_ids
    if det_json:
        check_detections(det_json, image_ids, ann_file)
        detections = load_coco_detections(det_json)
        boxes = {i: detections.get(i, Detections.empty()) for i in image_ids}
    else:
        boxes = {i: ground_truth_detections(coco, i) for i in image_ids}
    if not any(len(found) for found in boxes.values()):
        raise AnnotationError("no person boxes ({}) in the {} image(s) evaluated{}: nothing to evaluate".format(
            "from {}".format(det_json) if det_json else "ground truth with keypoints", len(image_ids),
            " ({} {}); raise {}".format(limit_flag, limit, limit_flag) if limit is not None else ""))
    paths = {i: image_path(root, coco.loadImgs([i])[0]["file_name"]) for i in image_ids}
    return EvalInputs(ann_file, root, coco, image_ids, paths, boxes)


def evaluate_runner(runner, coco_root: str, ann: Optional[str] = None, det_json: Optional[str] = None,
                    flip: bool = True, limit: Optional[int] = None, post_process: Optional[str] = "quarter",
                    progress: bool = True, inputs: Optional["EvalInputs"] = None) -> EvalResult:
    """Evaluate a pose runner on COCO; ground-truth boxes unless ``det_json`` gives detection results.

    Every input is checked (``prepare_eval``) before the first crop reaches the model; ``inputs``: its result when
    the caller checked them already (before loading the model)."""
    from goatpose_edge.imagefile import read_image
    from goatpose_edge.pipeline import TopDownPoseEstimator

    inputs = inputs or prepare_eval(coco_root, ann, det_json, limit)
    coco, image_ids, paths = inputs.coco, inputs.image_ids, inputs.paths
    thresholds = hrnet_thresholds()
    estimator = TopDownPoseEstimator(None, runner, flip=flip, post_process=post_process,
                                     oks_nms_threshold=thresholds["oks_nms"])
    results, boxes = [], 0
    started = time.perf_counter()
    for image_id in _progress(image_ids, progress, "eval"):
        found = inputs.boxes[image_id]
        boxes += len(found)
        if len(found) == 0:
            continue
        frame = read_image(paths[image_id])  # one line for an undecodable or truncated image; no EXIF rotation
        for person in estimator.estimate(frame, found):
            results.append({"image_id": image_id, "category_id": 1, "score": round(person.score, 6),
                            "keypoints": [round(float(v), 3) for v in person.keypoints.ravel()]})
    seconds = time.perf_counter() - started
    stats = evaluate_keypoints(coco, results, image_ids)
    settings = {"ann": inputs.ann_file, "boxes": det_json or "ground truth", "flip": flip,
                "post_process": post_process, "limit": limit, "oks_nms": estimator.oks_nms_threshold,
                "rescore_threshold": thresholds["rescore_threshold"]}
    return EvalResult(stats, len(image_ids), boxes, len(results), seconds, settings, results)


def _progress(items, enabled: bool, label: str):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=label, unit="img", leave=False)


def _is_results(path: str) -> bool:
    from goatpose_edge.fileio import read_json

    results = read_json(path)
    return isinstance(results, list) and all(isinstance(r, dict) and {"image_id", "keypoints"} <= set(r)
                                             for r in results)


#: ``NAME_results.json`` of ``goatpose eval --out NAME``: COCO keypoint results, replaced only by another eval
EVAL_RESULTS = Kind("COCO keypoint results of goatpose eval", _is_results)


def write_results(path: str, results: List[dict]) -> None:
    from goatpose_edge.fileio import atomic_output

    with atomic_output(path) as tmp_path:
        with open(tmp_path, "w") as f:
            json.dump(results, f)
