"""Pre- and post-processing in numpy + OpenCV only (device side, no torch): box <-> center/scale, affine crops,
heatmap decoding, flip merge, OKS-NMS. Filled by the [codec-pipeline] issue; the model contract it reads lives in
``goatpose_edge.contract``.
"""
