"""Real TensorRT on a real GPU (``make test-gpu`` on a Jetson or GPU box); skipped cleanly everywhere else."""

import os

import numpy as np
import pytest


def _real_tensorrt_and_gpu():
    try:
        import tensorrt
        import pycuda.driver as cuda
    except ImportError:
        return "TensorRT or pycuda is not installed"
    if "trtfake" in (getattr(tensorrt, "__file__", "") or "") or "trtfake" in (getattr(cuda, "__file__", "") or ""):
        return "tensorrt here is the trtfake stand-in"
    try:
        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA device"
    except Exception as exc:  # any driver failure means: no usable GPU here
        return "CUDA unavailable: {}".format(exc)
    return None


REASON = _real_tensorrt_and_gpu()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=str(REASON))]


def _goatpose_bl_onnx(exports):
    """A GoatPose-BL ONNX: exported here when PyTorch is installed, else the one `make export` made on the host and
    that was copied with the checkout (a Jetson has no PyTorch)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        from tests.helpers import REPO_ROOT

        path = os.path.join(REPO_ROOT, "export", "goatpose-bl_256x192.onnx")
        if not os.path.isfile(path):
            pytest.skip("no PyTorch here and no export/goatpose-bl_256x192.onnx: run make export on the host and "
                        "copy export/ to this machine")
        return path
    return exports.onnx("goatpose-bl").path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime_on_real_crops(exports, precision, tmp_path, coco_persons):
    pytest.importorskip("onnxruntime", reason="the comparison runs the ONNX with onnxruntime")
    from goatpose_edge.engines.builder import BatchProfile, BuildOptions, build_engine
    from goatpose_edge.engines.verify import verify_engine

    onnx_path = _goatpose_bl_onnx(exports)
    engine = str(tmp_path / "bl.engine")
    build_engine(onnx_path, engine, BuildOptions(precision=precision, profile=BatchProfile(1, 4, 8)))
    report = verify_engine(onnx_path, engine, sources=coco_persons[:8])
    assert report.ok, report.line()


def test_pipeline_on_the_engine(exports, tmp_path, coco_persons):
    import cv2

    from goatpose_edge.detection import WholeFrame
    from goatpose_edge.engines.builder import BatchProfile, BuildOptions, build_engine
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime import load_runner

    engine = str(tmp_path / "bl.engine")
    build_engine(_goatpose_bl_onnx(exports), engine, BuildOptions(profile=BatchProfile(1, 2, 2)))
    frame = cv2.imread(coco_persons[0][0])
    with load_runner(engine) as runner:
        persons = TopDownPoseEstimator(WholeFrame(), runner, flip=True)(frame)
    assert len(persons) == 1 and np.isfinite(persons[0].keypoints).all()
    assert os.path.isfile(engine[:-len(".engine")] + ".json")
