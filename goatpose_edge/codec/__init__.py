"""Pre- and post-processing in numpy + OpenCV only (device side, no torch), with HRNet's conventions and names.

Glossary of shapes: N persons, K keypoints, heatmaps [N, K, h, w], network input [N, 3, H, W]; boxes (x, y, w, h) and
keypoints (x, y) in image pixels; ``center`` (x, y) / ``scale`` (w, h) as in HRNet (scale in ``PIXEL_STD``-px
units). Sizes are (H, W), as array shapes, at every public function: the contract's ``input_size`` and
``heatmap_size``, ``get_affine_transform``'s ``output_size``, ``transform_preds``' and ``encode_keypoints``'
``heatmap_size``, ``clean_box``'s ``image_size``. ``HeatmapCodec`` is the one object that encodes training targets
and decodes network output; the functions are its parts.
"""

from goatpose_edge.codec.crop import clean_box, crop_person, crops_from_boxes, normalize_crops
from goatpose_edge.codec.flip import flip_back, flip_permutation, merge_flip
from goatpose_edge.codec.heatmap import (DEFAULT_SIGMA, POST_PROCESS, HeatmapCodec, dark_refine, decode_heatmaps,
                                         encode_keypoints, get_max_preds, quarter_offset, transform_preds)
from goatpose_edge.codec.oks import oks_iou, oks_nms, rescore, soft_oks_nms
from goatpose_edge.codec.transforms import PIXEL_STD, affine_transform, box_to_center_scale, get_affine_transform

__all__ = [
    "DEFAULT_SIGMA", "HeatmapCodec", "PIXEL_STD", "POST_PROCESS", "affine_transform",
    "box_to_center_scale", "clean_box", "crop_person", "crops_from_boxes", "dark_refine", "decode_heatmaps",
    "encode_keypoints", "flip_back", "flip_permutation", "get_affine_transform", "get_max_preds", "merge_flip",
    "normalize_crops", "oks_iou", "oks_nms", "quarter_offset", "rescore", "soft_oks_nms", "transform_preds",
]
