"""Static-batch artefacts (``export --batch N``, ``build --batch N``) through every comparison: engine verification,
Q/DQ quantization and its accuracy, ``goatpose verify`` - all chunk through ``runtime.base.infer_chunked``."""

import os

import numpy as np
import onnx
import pytest

from goatpose_edge.cli import main
from goatpose_edge.runtime.base import infer_chunked
from tests.helpers import stand_in_pose_onnx
from tests.engines.test_trtfake import TRTFAKE, fake_env, goatpose


def _convs():
    rs = np.random.RandomState(0)
    return [((rs.randn(16, 3, 3, 3) * 0.3), {"pads": [1, 1, 1, 1]}), ((rs.randn(17, 16, 4, 4) * 0.1),
                                                                        {"strides": [4, 4]})]


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory):
    """The same two convs with a dynamic batch and with a static batch of 3."""
    folder = tmp_path_factory.mktemp("static")
    dynamic = stand_in_pose_onnx(str(folder / "dynamic.onnx"), _convs())
    model = onnx.load(dynamic)
    for tensor in (model.graph.input[0], model.graph.output[0]):
        tensor.type.tensor_type.shape.dim[0].dim_value = 3
    static = str(folder / "static3.onnx")
    onnx.save(model, static)
    return dynamic, static


class Recorder:
    """A runner stand-in with a profile of 3..5 that records the batch sizes it is given."""

    min_batch, max_batch = 3, 5

    def __init__(self):
        self.sizes = []

    def infer(self, batch):
        assert self.min_batch <= len(batch) <= self.max_batch
        self.sizes.append(len(batch))
        return batch[:, :1] * 2


def test_infer_chunked_pads_to_the_smallest_batch_and_drops_the_padding():
    runner = Recorder()
    batch = np.arange(12, dtype=np.float32).reshape(12, 1, 1, 1)
    out = infer_chunked(runner, batch)
    assert runner.sizes == [5, 5, 3] and np.array_equal(out, batch * 2)  # 2 real + 1 padding in the last chunk
    assert infer_chunked(Recorder(), batch[:1]).shape == (1, 1, 1, 1)


def test_goatpose_verify_static_against_dynamic(onnx_pair, person_image_arg, capsys):
    dynamic, static = onnx_pair
    assert main(["verify", dynamic, static, "--image", person_image_arg]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("onnxruntime vs onnxruntime: ")]
    assert len(lines) == 2 and all(l.endswith("  ok") for l in lines), lines  # random input and the real crop


def test_quantize_a_static_batch_graph(onnx_pair, shared_data, tmp_path, capsys, monkeypatch):
    folder = os.path.join(shared_data, "coco_sample")
    monkeypatch.chdir(str(tmp_path))  # onnxruntime <= 1.12 left augmented_model.onnx in the working folder
    assert main(["quantize", onnx_pair[1], "--calib-coco", os.path.join(folder, "test_coco.json"), folder,
                 "--calib-count", "4", "-o", "static3_qdq.onnx"]) == 0
    assert "Q/DQ INT8 vs FP32" in capsys.readouterr().out
    assert os.listdir(str(tmp_path)) == ["static3_qdq.onnx"]


@pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")
@pytest.mark.parametrize("which", ["dynamic", "static"])
def test_build_batch_n_verify_reaches_the_comparison(onnx_pair, shared_data, tmp_path, which, person_image_arg):
    """`build --batch 4 --verify` (or a static-batch ONNX) on 13 crops: both sides take every crop, the last chunk
    padded; the fake's numbers mean nothing, so only that the comparison ran is asserted, never its verdict."""
    folder = os.path.join(shared_data, "coco_sample")
    onnx_path = onnx_pair[0] if which == "dynamic" else onnx_pair[1]
    args = ["build", onnx_path, "--verify", "--calib-coco", os.path.join(folder, "test_coco.json"), folder, "--image",
            person_image_arg, "-o", str(tmp_path / "e.engine")] + (["--batch", "4"] if which == "dynamic" else [])
    result = goatpose(fake_env("8.2.1", "tx2"), *args)
    assert "verify fp16 engine vs onnxruntime FP32 on 13 crops" in result.stdout + result.stderr, result.stderr
    assert "outside" not in result.stderr and "internal error" not in result.stderr
