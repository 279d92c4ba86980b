"""The COCO person-keypoints dataset: files checked before use, the pycocotools index, image paths, ground-truth boxes.

Shared by evaluation (``bench.coco_eval``) and training (``train.data``); pycocotools is needed for the index only.
"""

import contextlib
import io
import json
import math
import os
from typing import Optional

from goatpose_edge.artefact.contract import COCO_KEYPOINT_NAMES
from goatpose_edge.codec import clean_box
from goatpose_edge.detection.base import Detections
from goatpose_edge.errors import DependencyError, GoatPoseError


def coco_api():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise DependencyError("COCO evaluation needs pycocotools: pip install 'goatpose-edge[eval]'") from exc
    return COCO, COCOeval


class AnnotationError(GoatPoseError):
    """A COCO annotation or detection-results file that is missing, not JSON, or not in the expected format."""


#: COCO person keypoints per annotation (the 17 of person_keypoints_*.json)
NUM_KEYPOINTS = len(COCO_KEYPOINT_NAMES)
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


def is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _annotation_problem(ann, num_keypoints: int) -> Optional[str]:
    """What keeps a COCO keypoint annotation from being used (None: nothing)."""
    if not isinstance(ann, dict):
        return "is a JSON {}, not an object".format(type(ann).__name__)
    missing = [name for name in _ANNOTATION_FIELDS if name not in ann]
    if missing:
        return "has no {}".format("/".join("'{}'".format(m) for m in missing))
    if not is_id(ann["id"]) or not is_id(ann["image_id"]) or not is_id(ann["category_id"]):
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
                or not is_id(image["id"]) or not isinstance(image["file_name"], str) or not image["file_name"] \
                or not all(_is_number(image[k]) and image[k] > 0 for k in ("width", "height")):
            raise AnnotationError("{}: image #{} is not a COCO image record {{id, file_name, width, height}}; "
                                  "{}".format(path, index, _KEYPOINT_FILE))
        if image["id"] in image_ids:
            raise AnnotationError("{}: image id {} appears twice".format(path, image["id"]))
        image_ids.add(image["id"])
    if not any(isinstance(c, dict) and c.get("id") == 1 for c in data["categories"]) \
            or not all(isinstance(c, dict) and is_id(c.get("id")) for c in data["categories"]):
        raise AnnotationError("{} has no person category (categories: [{{\"id\": 1, \"name\": \"person\"}}] expected); "
                              "{}".format(path, _KEYPOINT_FILE))
    annotation_ids, persons = set(), 0
    for index, ann in enumerate(data["annotations"]):
        problem = _annotation_problem(ann, num_keypoints)
        if problem:
            label = "annotation #{}{}".format(index, " (id {})".format(ann["id"]) if isinstance(ann, dict)
                                               and is_id(ann.get("id")) else "")
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
    COCO, _ = coco_api()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
    return coco


def load_coco(ann_file: str):
    """pycocotools ``COCO`` of a person-keypoints file, checked first (``read_keypoint_annotations``)."""
    coco_api()  # the missing package is named before the file is read
    return coco_from_dataset(read_keypoint_annotations(ann_file))


def check_detections(det_json: str, image_ids, ann_file: str = "the annotations") -> None:
    """Fail in one line unless ``det_json`` is a COCO detection-results list with person boxes for some of
    ``image_ids`` (the images being evaluated)."""
    results = _read_json(det_json, "detection results")
    shape = "a COCO detection-results list [{image_id, category_id, bbox [x, y, w, h], score}]"
    if not isinstance(results, list):
        raise AnnotationError("{} is not {}; it holds a JSON {}".format(det_json, shape, type(results).__name__))
    for index, r in enumerate(results):
        if not isinstance(r, dict) or not is_id(r.get("image_id")) or not isinstance(r.get("bbox"), list) \
                or len(r["bbox"]) != 4 or not all(_is_number(v) for v in r["bbox"]) \
                or not _is_number(r.get("score", 1.0)) or not is_id(r.get("category_id", 1)):
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


def ground_truth_detections(coco, image_id: int):
    """Clean person boxes of an image's non-crowd annotations with at least one labelled keypoint and a positive
    area (HRNet's GT-box set), score 1."""
    info = coco.loadImgs([image_id])[0]
    boxes = []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False)):
        box = clean_box(ann["bbox"], (info["height"], info["width"]))
        if ann.get("num_keypoints", 0) > 0 and ann.get("area", 1) > 0 and box is not None and box[2] > 0 \
                and box[3] > 0:
            boxes.append(box)
    return Detections.sorted(boxes, [1.0] * len(boxes))
