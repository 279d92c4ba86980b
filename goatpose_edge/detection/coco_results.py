"""Person boxes from a COCO detection-results JSON (e.g. HRNet's COCO_val2017_detections_AP_H_56_person.json)."""

import json
from collections import defaultdict
from typing import Dict

import numpy as np

from goatpose_edge.detection.base import Detections, DetectorError


def load_coco_detections(path: str, score_threshold: float = 0.0, category_id: int = 1) -> Dict[int, Detections]:
    """image_id -> person ``Detections`` (best first) from a COCO results file: [{image_id, category_id, bbox, score}]."""
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, IOError) as exc:
        raise DetectorError("cannot read detections {}: {}".format(path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise DetectorError("{} is not valid JSON: {}".format(path, exc)) from exc
    if not isinstance(results, list) or any(not isinstance(r, dict) or "bbox" not in r for r in results):
        raise DetectorError("{} is not a COCO detection-results list of {{image_id, category_id, bbox, score}}"
                            .format(path))
    boxes, scores = defaultdict(list), defaultdict(list)
    for r in results:
        if r.get("category_id", category_id) == category_id and r.get("score", 1.0) >= score_threshold:
            boxes[r["image_id"]].append(r["bbox"])
            scores[r["image_id"]].append(r.get("score", 1.0))
    return {image_id: Detections.sorted(boxes[image_id], scores[image_id]) for image_id in boxes}
