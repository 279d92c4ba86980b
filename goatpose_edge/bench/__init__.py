"""Benchmarks: model-only latency, per-stage pipeline timing on a video, COCO keypoint AP, and where they ran.

Device side: numpy, OpenCV and the runners only; torch is never imported here (a ``.pth`` artefact's runner imports
it itself). Submodules are imported where used, so the pipeline can take ``bench.timing`` alone.
"""
