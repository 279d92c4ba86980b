"""COCO keypoint evaluation with HRNet's protocol, for any runner (so FP32/FP16/INT8 deltas are measured alike).

Protocol (HRNet ``lib/dataset/coco.py``, ``test.py``): person boxes from a detection-results file (all scores, as
HRNet's ``image_thre = 0.0``) or the ground-truth boxes of persons with at least one labelled keypoint (score 1);
each box cropped with the codec's affine, heatmaps decoded (``quarter`` offset, or DARK), flip test optional;
instance score = box score x mean keypoint score above 0.2; OKS-NMS at 0.9 per image; pycocotools ``keypoints``.
"""

import contextlib
import inspect
import io
import json
import math
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


class AnnotationError(GoatPoseError):
    """A COCO annotation or detection-results file that is missing, not JSON, or not in the expected format."""


#: COCO person keypoints per annotation (the 17 of person_keypoints_*.json)
NUM_KEYPOINTS = 17
_NOT_COCO = "not a COCO annotation file (a JSON object with images/annotations/categories expected)"
_KEYPOINT_FILE = "give a COCO person-keypoints file such as person_keypoints_val2017.json"
_IMAGE_FIELDS = ("id", "file_name", "width", "height")
_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "bbox", "keypoints", "num_keypoints", "area", "iscrowd")


def resolve_coco(root: str, ann: Optional[str] = None):
    """(annotation file, COCO root): ``ann`` or ``ROOT/annotations/person_keypoints_val2017.json``, checked to
    exist. The image folder is found later, per image: ``ROOT/val2017``, ``ROOT/images/val2017`` or ``ROOT``."""
    if not os.path.isdir(root):
        raise GoatPoseError("COCO root {} is not a folder".format(root))
    ann = ann or os.path.join(root, "annotations", "person_keypoints_val2017.json")
    if not os.path.isfile(ann):
        raise AnnotationError("annotation file {} not found (pass --ann FILE)".format(ann))
    return ann, root


def _read_json(path: str, what: str):
    if not os.path.isfile(path):
        raise AnnotationError("{} {} not found".format(what, path))
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, IOError) as exc:
        raise AnnotationError("cannot read {} {}: {}".format(what, path, exc.strerror or exc)) from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AnnotationError("{} is not valid JSON ({}): {} expected".format(
            path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, what)) from exc


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _annotation_problem(ann, num_keypoints: int) -> Optional[str]:
    """What keeps a COCO keypoint annotation from being used (None: nothing)."""
    if not isinstance(ann, dict):
        return "is a JSON {}, not an object".format(type(ann).__name__)
    missing = [name for name in _ANNOTATION_FIELDS if name not in ann]
    if missing:
        return "has no {}".format("/".join("'{}'".format(m) for m in missing))
    if not _is_id(ann["id"]) or not _is_id(ann["image_id"]) or not _is_id(ann["category_id"]):
        return "has a non-integer id, image_id or category_id"
    bbox = ann["bbox"]
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return "has a bbox that is not [x, y, w, h]"
    keypoints = ann["keypoints"]
    if not isinstance(keypoints, list) or len(keypoints) != 3 * num_keypoints or not all(
            _is_number(v) for v in keypoints):
        return "has keypoints that are not {} numbers (x, y, v for {} keypoints)".format(3 * num_keypoints,
                                                                                        num_keypoints)
    if not _is_number(ann["num_keypoints"]) or not _is_number(ann["area"]) or ann["iscrowd"] not in (0, 1):
        return "has a num_keypoints or area that is not a number, or an iscrowd that is not 0/1"
    return None


def read_keypoint_annotations(path: str, num_keypoints: int = NUM_KEYPOINTS) -> dict:
    """The parsed COCO person-keypoints file at ``path``, checked for every field pycocotools and this toolkit read,
    so that a wrong file fails here in one line (before any model runs), not deep inside pycocotools."""
    data = _read_json(path, "COCO annotation file")
    if not isinstance(data, dict):
        raise AnnotationError("{} is {}; it holds a JSON {}".format(path, _NOT_COCO, type(data).__name__))
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError("{} is {}; its '{}' is {}".format(
                path, _NOT_COCO, key, "missing" if key not in data else "not a list"))
    if not data["images"]:
        raise AnnotationError("no images in {}: nothing to evaluate or train on; {}".format(path, _KEYPOINT_FILE))
    image_ids = set()
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or any(name not in image for name in _IMAGE_FIELDS) \
                or not _is_id(image["id"]) or not isinstance(image["file_name"], str) or not image["file_name"] \
                or not all(_is_number(image[k]) and image[k] > 0 for k in ("width", "height")):
            raise AnnotationError("{}: image #{} is not a COCO image record {{id, file_name, width, height}}; "
                                  "{}".format(path, index, _KEYPOINT_FILE))
        if image["id"] in image_ids:
            raise AnnotationError("{}: image id {} appears twice".format(path, image["id"]))
        image_ids.add(image["id"])
    if not any(isinstance(c, dict) and c.get("id") == 1 for c in data["categories"]) \
            or not all(isinstance(c, dict) and _is_id(c.get("id")) for c in data["categories"]):
        raise AnnotationError("{} has no person category (categories: [{{\"id\": 1, \"name\": \"person\"}}] expected); "
                              "{}".format(path, _KEYPOINT_FILE))
    annotation_ids, persons = set(), 0
    for index, ann in enumerate(data["annotations"]):
        problem = _annotation_problem(ann, num_keypoints)
        if problem:
            label = "annotation #{}{}".format(index, " (id {})".format(ann["id"]) if isinstance(ann, dict)
                                               and _is_id(ann.get("id")) else "")
            raise AnnotationError("{}: {} {}: not a person-keypoints annotation; {}".format(
                path, label, problem, _KEYPOINT_FILE))
        if ann["id"] in annotation_ids:
            raise AnnotationError("{}: annotation id {} appears twice".format(path, ann["id"]))
        annotation_ids.add(ann["id"])
        if ann["category_id"] == 1 and not ann["iscrowd"] and ann["num_keypoints"] > 0 and ann["image_id"] in image_ids:
            persons += 1
    if not persons:
        raise AnnotationError("{} has no person annotations with keypoints (non-crowd, num_keypoints > 0, for one of "
                              "its {} image(s)): nothing to evaluate or train on".format(path, len(image_ids)))
    return data


def coco_from_dataset(data: dict):
    """A pycocotools ``COCO`` index over an already parsed (and checked) annotation dict."""
    COCO, _ = _coco_api()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco


def load_coco(ann_file: str):
    """pycocotools ``COCO`` of a person-keypoints file, checked first (``read_keypoint_annotations``)."""
    _coco_api()  # the missing package is named before the file is read
    return coco_from_dataset(read_keypoint_annotations(ann_file))


def check_detections(det_json: str, image_ids, ann_file: str = "the annotations") -> None:
    """Fail in one line unless ``det_json`` is a COCO detection-results list with person boxes for some of
    ``image_ids`` (the images being evaluated)."""
    results = _read_json(det_json, "detection results")
    shape = "a COCO detection-results list [{image_id, category_id, bbox [x, y, w, h], score}]"
    if not isinstance(results, list):
        raise AnnotationError("{} is not {}; it holds a JSON {}".format(det_json, shape, type(results).__name__))
    for index, r in enumerate(results):
        if not isinstance(r, dict) or not _is_id(r.get("image_id")) or not isinstance(r.get("bbox"), list) \
                or len(r["bbox"]) != 4 or not all(_is_number(v) for v in r["bbox"]) \
                or not _is_number(r.get("score", 1.0)) or not _is_id(r.get("category_id", 1)):
            raise AnnotationError("{}: record #{} is not a detection result; {} expected".format(
                det_json, index, shape))
    persons = {r["image_id"] for r in results if r.get("category_id", 1) == 1}
    if not persons:
        raise AnnotationError("{} has no person detections (category_id 1): nothing to evaluate".format(det_json))
    wanted = set(image_ids)
    if not persons & wanted:
        raise AnnotationError("none of the person detections in {} is for an image of {} ({} image(s) evaluated); "
                              "pass the detections made for these images".format(det_json, ann_file, len(wanted)))


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


def _check_limit(limit, flag: str = "--limit") -> None:
    if limit is not None and (not _is_id(limit) or limit < 1):
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
    from goatpose_edge.codec import rescore
    from goatpose_edge.imagefile import read_image
    from goatpose_edge.pipeline import TopDownPoseEstimator

    inputs = inputs or prepare_eval(coco_root, ann, det_json, limit)
    coco, image_ids, paths = inputs.coco, inputs.image_ids, inputs.paths
    estimator = TopDownPoseEstimator(None, runner, flip=flip, post_process=post_process, oks_nms_threshold=0.9)
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
    rescore_threshold = inspect.signature(rescore).parameters["in_vis_thre"].default  # the pipeline's (default)
    settings = {"ann": inputs.ann_file, "boxes": det_json or "ground truth", "flip": flip,
                "post_process": post_process, "limit": limit, "oks_nms": estimator.oks_nms_threshold,
                "rescore_threshold": rescore_threshold}
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
