"""Benchmarks: model-only latency, per-stage pipeline timing on a video, COCO keypoint AP, and where they ran.

Device side: numpy, OpenCV and the runners only; torch is imported only for a ``.pth`` artefact, whose runner has
already loaded it (its complexity is then measured as ``goatpose info`` does).
The stage timers the pipeline and the streaming engine use are ``goatpose_edge.timing``, below every layer.
"""
