"""The runner contract: torch and onnxruntime runners agree, validate input once, and refuse misuse."""

import numpy as np
import pytest

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime import RunnerError, load_runner


@pytest.fixture(scope="module")
def artefacts(exports):
    return exports.checkpoint("goatpose-bl"), exports.onnx("goatpose-bl").path


def test_torch_and_onnxruntime_runners_agree(artefacts):
    batch = np.random.RandomState(1).standard_normal((3, 3, 256, 192)).astype(np.float32)
    outputs = []
    for path in artefacts:
        with load_runner(path) as runner:
            assert runner.contract.name == "goatpose-bl" and runner.contract.input_size == (256, 192)
            outputs.append(runner.infer(batch))
    assert outputs[0].shape == (3, 17, 64, 48)
    assert np.abs(outputs[0] - outputs[1]).max() <= 1e-4 * np.abs(outputs[0]).max()


@pytest.mark.parametrize("shape, dtype, message", [
    ((1, 3, 128, 96), np.float32, r"expects a batch \[N, 3, 256, 192\], got \[1, 3, 128, 96\]"),
    ((1, 3, 256, 192), np.float64, "expects float32 input, got float64"),
    ((0, 3, 256, 192), np.float32, "batch of 0 is outside"),
])
def test_bad_batches(artefacts, shape, dtype, message):
    with load_runner(artefacts[1]) as runner:
        with pytest.raises(RunnerError, match=message):
            runner.infer(np.zeros(shape, dtype))


def test_inactive_runner(artefacts):
    runner = load_runner(artefacts[1])
    with pytest.raises(RunnerError, match="is not active"):
        runner.infer(np.zeros((1, 3, 256, 192), np.float32))


def test_unknown_and_missing_artefacts(tmp_path):
    other = tmp_path / "model.tflite"
    other.write_bytes(b"x")
    with pytest.raises(GoatPoseError, match=r"unknown artefact type '.tflite'; supported: .engine, .onnx, .plan, .pt, .pth, .trt"):
        load_runner(str(other))
    with pytest.raises(GoatPoseError, match="artefact not found"):
        load_runner(str(tmp_path / "none.onnx"))
