"""Synthetic ground truth for the video pipeline: stick-figure videos, a dot-finding pose model, a detector, scores.

No trained pose weights are needed: the scene draws each COCO joint as a dot of its own colour, the dot model is an
ONNX graph with a pose model's I/O and contract that finds those colours, and the truth says where every joint is.

    from goatpose_edge.synthetic import (FigureDetector, build_dot_pose_onnx, render_scene, score_predictions,
                                         walkers)
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import open_runner

    options = walkers(frames=60, jitter_px=2.0)              # or crossing(...), single(...), SceneOptions(...)
    with open_runner(build_dot_pose_onnx("dotpose.onnx")) as runner:
        estimator = TopDownPoseEstimator(FigureDetector(), runner, post_process="dark")
        frames, truth = zip(*render_scene(options))
        score = score_predictions([estimator(frame) for frame in frames], truth)
    print(score.recall, score.rms_px)                        # HarnessScore; .to_dict() for JSON

Or through files and the real video command:

    python -m goatpose_edge.synthetic scene walk.avi --truth walk.truth.jsonl --preset walkers --frames 100
    python -m goatpose_edge.synthetic dotpose dotpose.onnx
    goatpose video walk.avi --pose dotpose.onnx --detector figures --jsonl run.jsonl
    python -m goatpose_edge.synthetic score run.jsonl walk.truth.jsonl

Modules: ``figure`` (a figure's walk and joint colours), ``scene`` (rendering, presets, video + truth files),
``dotpose`` (the ONNX model; needs ``onnx`` to build, not to run), ``detector`` (``FigureDetector``, also
``make_detector("figures")``), ``metrics`` (matching, recall, keypoint RMS, identity switches, lag).

Device side: numpy and OpenCV only (``onnx`` is imported by ``build_dot_pose_onnx`` alone), Python 3.6.
"""

from goatpose_edge.detection.figures import FigureDetector, FigureDetectorOptions
from goatpose_edge.synthetic.dotpose import DotPoseOptions, build_dot_pose_onnx, dot_pose_contract
from goatpose_edge.synthetic.figure import JOINT_COLOURS, LIMB_COLOUR, FigurePath
from goatpose_edge.synthetic.metrics import (HarnessScore, MatchOptions, lag_frames, match_frame, read_predictions,
                                             score_jsonl, score_predictions, trajectories)
from goatpose_edge.synthetic.scene import (PRESETS, FigureTruth, SceneError, SceneOptions, crossing, read_truth,
                                           render_scene, single, walkers, write_scene)

__all__ = ["DotPoseOptions", "FigureDetector", "FigureDetectorOptions", "FigurePath", "FigureTruth", "HarnessScore",
           "JOINT_COLOURS", "LIMB_COLOUR", "MatchOptions", "PRESETS", "SceneError", "SceneOptions",
           "build_dot_pose_onnx", "crossing", "dot_pose_contract", "lag_frames", "match_frame", "read_predictions",
           "read_truth", "render_scene", "score_jsonl", "score_predictions", "single", "trajectories", "walkers",
           "write_scene"]
