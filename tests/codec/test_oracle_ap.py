"""Oracle on real COCO val2017 persons: heatmaps synthesised from the ground truth through the real crop, decoded,
rescored and OKS-NMSed like HRNet, then scored by pycocotools: AP >= 0.99 with the flip test off and on."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from goatpose_edge.codec import (PIXEL_STD, affine_transform, box_to_center_scale, decode_heatmaps, encode_keypoints,
                                 get_affine_transform, merge_flip, oks_nms, rescore)
from goatpose_edge.variants import VARIANTS


def _oracle_results(annotations, contract, flip, post_process):
    width = contract.input_size[1]
    results = []
    for ann in annotations:
        center, scale = box_to_center_scale(ann["bbox"], contract.aspect_ratio)
        trans = get_affine_transform(center, scale, 0, contract.input_size)
        gt = np.array(ann["keypoints"], np.float64).reshape(-1, 3)
        crop_xy = affine_transform(gt[:, :2], trans)  # [K, 2] input-crop pixels
        heatmaps, _ = encode_keypoints(crop_xy, gt[:, 2] > 0, contract.heatmap_size, contract.heatmap_stride)
        heatmaps = heatmaps[None]
        if flip:  # what the network would see for the mirrored crop: x -> W - 1 - x, left/right swapped
            mirrored = crop_xy.copy()
            mirrored[:, 0] = width - 1 - mirrored[:, 0]
            swap = np.arange(len(gt))
            for a, b in contract.flip_pairs:
                swap[a], swap[b] = b, a
            flipped, _ = encode_keypoints(mirrored[swap], (gt[:, 2] > 0)[swap], contract.heatmap_size,
                                          contract.heatmap_stride)
            heatmaps = merge_flip(heatmaps, flipped[None], contract.flip_pairs)
        keypoints, scores = decode_heatmaps(heatmaps, center[None], scale[None], post_process)
        results.append({"image_id": ann["image_id"], "category_id": 1, "center": center, "scale": scale,
                        "keypoints": np.concatenate([keypoints[0], scores[0]], axis=1),
                        "score": float(rescore(np.array([1.0]), scores[0].T)[0])})
    kept = []
    for image_id in sorted({r["image_id"] for r in results}):
        persons = [r for r in results if r["image_id"] == image_id]
        keep = oks_nms(np.stack([p["keypoints"] for p in persons]), [p["score"] for p in persons],
                       [float(np.prod(p["scale"] * PIXEL_STD)) for p in persons], thresh=0.9)
        kept += [persons[i] for i in keep]
    return [{"image_id": r["image_id"], "category_id": 1, "score": r["score"],
             "keypoints": r["keypoints"].ravel().round(3).tolist()} for r in kept]


@pytest.mark.parametrize("flip", [False, True], ids=["no-flip", "flip"])
@pytest.mark.parametrize("post_process", ["quarter", "dark"])
def test_ground_truth_through_crop_and_decode_gives_ap_099(shared_data, flip, post_process, tmp_path):
    ann_file = os.path.join(shared_data, "coco_sample", "test_coco.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann_file)
    annotations = [a for a in coco.dataset["annotations"] if a["num_keypoints"] > 0]
    assert len(annotations) == 12
    results = _oracle_results(annotations, VARIANTS["goatpose-bl"].contract, flip, post_process)
    result_file = str(tmp_path / "results.json")
    with open(result_file, "w") as f:
        json.dump(results, f)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(result_file), "keypoints")
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] >= 0.99, evaluator.stats
