"""One runner contract, the same checks on every backend: torch (a checkpoint), onnxruntime (a one-conv stand-in
ONNX) and TensorRT (an engine of that stand-in).

TensorRT runs where ``tensorrt`` imports. Under the strict fakes, tests/engines/test_trtfake.py runs this module in a
child pytest per TensorRT generation, because a fake's generation is fixed when it is imported and one process
cannot hold two. It passes the engine it built in ``GOATPOSE_CONTRACT_ENGINE``. With a real TensorRT, and no engine
given, the engine is built here. Where neither is available the TensorRT cases skip, and the torch cases skip without
torch (the device side).
"""

import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.artefact.onnx_meta import COMPLEXITY_KEY
from goatpose_edge.artefact.sidecar import sidecar_path
from goatpose_edge.errors import ContractError
from goatpose_edge.runtime import RunnerError, load_runner
from tests.helpers import REPO_ROOT, stand_in_pose_onnx

#: names an engine of the stand-in built elsewhere (tests/engines/test_trtfake.py, under a fake generation)
ENGINE_VARIABLE = "GOATPOSE_CONTRACT_ENGINE"
BACKENDS = ("torch", "onnxruntime", "tensorrt")

#: the stand-in: one 4x4 stride-4 conv from 3 to 17 channels (816 weights, no bias) at 64 x 48 output positions
STAND_IN_CONVS = [(np.full((17, 3, 4, 4), 0.01, np.float32), {"strides": [4, 4]})]
STAND_IN_COMPLEXITY = {"model": "goatpose-bl", "params": 816, "macs": 816 * 64 * 48,
                       "gflops": round(816 * 64 * 48 / 2 ** 30, 4)}
#: a batch size that stands in for the "largest batch" of a runner without a bound
UNBOUNDED_LARGEST = 2


def stand_in_onnx(path: str, metadata=True) -> str:
    """The stand-in with goatpose-bl's contract and its own complexity record in its metadata (``metadata=False``:
    no metadata at all, as a graph from elsewhere)."""
    import onnx

    stand_in_pose_onnx(path, STAND_IN_CONVS)
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    props[COMPLEXITY_KEY] = json.dumps(STAND_IN_COMPLEXITY)
    del model.metadata_props[:]
    if metadata:
        onnx.helper.set_model_props(model, props)
    onnx.save(model, path)
    return path


def _build_engine(folder) -> str:
    pytest.importorskip("tensorrt", reason="no TensorRT here (tests/engines/test_trtfake.py runs these cases under "
                                           "the fakes)")
    onnx_path = stand_in_onnx(str(folder / "stand_in.onnx"))
    engine = str(folder / "stand_in.engine")
    build = subprocess.run([sys.executable, "-m", "goatpose_edge", "build", onnx_path, "--min-batch", "1",
                            "--opt-batch", "2", "--max-batch", "4", "-o", engine], cwd=REPO_ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    return engine


@pytest.fixture(scope="module", params=BACKENDS)
def case(exports, request, tmp_path_factory):
    """(artefact path, the precision and the complexity record its files hold, read here without a runner)."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "torch":
        pytest.importorskip("torch", reason="the torch runner is host side")
        from goatpose_edge.models.complexity import complexity_record
        from tests.helpers import measured_complexity

        return exports.checkpoint("goatpose-bl"), "fp32", complexity_record(measured_complexity("goatpose-bl"))
    if request.param == "onnxruntime":
        pytest.importorskip("onnxruntime")
        return stand_in_onnx(str(folder / "stand_in.onnx")), "fp32", STAND_IN_COMPLEXITY
    engine = os.environ.get(ENGINE_VARIABLE) or _build_engine(folder)
    with open(sidecar_path(engine)) as f:
        sidecar = json.load(f)
    return engine, sidecar["effective_precision"], sidecar["complexity"]


@pytest.fixture(scope="module")
def runner(case):
    with load_runner(case[0]) as active:
        yield active


def _batch(runner, count: int, seed: int = 0) -> np.ndarray:
    """A seeded network-input batch [count, 3, H, W] of the runner's input size."""
    return np.random.RandomState(seed).standard_normal((count,) + runner.expected_chw()).astype(np.float32)


def _heatmap_shape(runner, count: int):
    return (count, runner.contract.num_keypoints) + tuple(runner.contract.heatmap_size)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float32 rounding (torch may split a conv differently in another thread)."""
    return a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5 * max(float(np.abs(b).max()), 1e-12)


def test_the_contract_comes_from_the_artefact(runner):
    assert runner.contract.name == "goatpose-bl" and runner.contract.input_size == (256, 192)
    assert runner.pose_contract() is runner.contract
    assert runner.expected_chw() == (3, 256, 192)


@pytest.mark.parametrize("which", ["batch-1", "batch-max"])
def test_infer_gives_float32_heatmaps(runner, which):
    count = 1 if which == "batch-1" else runner.max_batch or UNBOUNDED_LARGEST
    heatmaps = runner.infer(_batch(runner, count))
    assert heatmaps.shape == _heatmap_shape(runner, count) and heatmaps.dtype == np.float32
    assert np.isfinite(heatmaps).all()
    stages = runner.last_stages  # only a backend that can split its call fills it
    assert stages is None or (set(stages) == {"copy_in", "infer", "copy_out"} and min(stages.values()) >= 0)


def test_infer_from_another_thread(runner):
    """A runner made in one thread serves another (the video engine's pose workers)."""
    batch = _batch(runner, 1, seed=1)
    results, errors = [], []

    def work():
        try:
            results.append(runner.infer(batch))
        except Exception as exc:  # noqa: BLE001 - asserted below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert errors == []
    assert results[0].shape == _heatmap_shape(runner, 1) and _same(results[0], runner.infer(batch))


@pytest.mark.parametrize("misuse", ["outside-profile", "float64", "input-size"])
def test_misuse_is_refused_and_the_runner_still_works(runner, misuse):
    if misuse == "outside-profile":
        count = runner.max_batch + 1 if runner.max_batch else 0
        batch = _batch(runner, count)
        message = "batch of {} is outside {}'s profile {}..{}".format(count, runner.path, runner.min_batch,
                                                                      runner.max_batch or "any")
    elif misuse == "float64":
        batch, message = _batch(runner, 1).astype(np.float64), "expects float32 input, got float64"
    else:
        batch = np.zeros((1, 3, 128, 96), np.float32)
        message = "expects a batch [N, 3, 256, 192], got [1, 3, 128, 96]"
    with pytest.raises(RunnerError, match=re.escape(message)):
        runner.infer(batch)
    assert runner.infer(_batch(runner, 1)).shape == _heatmap_shape(runner, 1)


def test_synchronize_leaves_earlier_results_untouched(runner):
    """``synchronize`` returns once the device is done, and an ``infer`` result is the caller's own array: the next
    call does not write into it."""
    first = runner.infer(_batch(runner, 1, seed=2))
    kept = first.copy()
    runner.infer(_batch(runner, 1, seed=3))
    assert runner.synchronize() is None
    assert np.array_equal(first, kept)


def test_spawn_gives_an_independent_runner(runner):
    batch = _batch(runner, 1, seed=4)
    expected = runner.infer(batch)
    other = runner.spawn()
    assert other is not runner and other.path == runner.path and not other.is_active
    with pytest.raises(RunnerError, match="is not active"):
        other.infer(batch)
    with other:
        assert other.contract == runner.contract
        assert (other.min_batch, other.max_batch) == (runner.min_batch, runner.max_batch)
        assert _same(other.infer(batch), expected)
    assert not other.is_active and runner.is_active
    assert _same(runner.infer(batch), expected)  # closing the spawned runner left this one working


def test_precision_complexity_and_description(runner, case):
    path, precision, complexity = case
    assert runner.precision == precision and runner.complexity == complexity
    description = runner.description()
    assert {key: description[key] for key in ("artefact", "path", "backend", "model", "input_size", "precision",
                                               "complexity")} == {
        "artefact": os.path.basename(path), "path": path, "backend": runner.backend, "model": "goatpose-bl",
        "input_size": [256, 192], "precision": precision, "complexity": complexity}
    assert json.loads(json.dumps(description)) == description  # the bench record stores it as it is


def test_an_onnx_without_a_contract_is_not_a_pose_model(tmp_path):
    """No contract in the metadata: the runner runs the graph on its own input shape (as a detector's), and
    whoever needs a pose model refuses it in one line."""
    pytest.importorskip("onnxruntime")
    from goatpose_edge.pipeline import TopDownPoseEstimator

    path = stand_in_onnx(str(tmp_path / "plain.onnx"), metadata=False)
    with load_runner(path) as plain:
        assert plain.contract is None and plain.complexity is None
        assert plain.input_shape == (None, 3, 256, 192)
        assert plain.infer(np.zeros((1, 3, 256, 192), np.float32)).shape == (1, 17, 64, 48)
        assert plain.description()["model"] is None and plain.description()["input_size"] == [256, 192]
        with pytest.raises(ContractError) as refused:
            TopDownPoseEstimator(None, plain)
    assert str(refused.value) == "{} is not a pose model (no model contract)".format(path)


def test_a_damaged_contract_is_an_error_not_a_missing_one(tmp_path):
    import onnx

    path = stand_in_onnx(str(tmp_path / "damaged.onnx"))
    model = onnx.load(path)
    onnx.helper.set_model_props(model, {METADATA_KEY: "{not json"})
    onnx.save(model, path)
    with pytest.raises(ContractError, match="model contract is not valid JSON"):
        load_runner(path)


def test_checkpoint_options_are_ignored_where_the_artefact_records_its_model(tmp_path):
    """A caller passes ``model_name`` / ``trusted`` for any path; only a checkpoint's runner reads them."""
    path = stand_in_onnx(str(tmp_path / "stand_in.onnx"))
    assert load_runner(path, model_name="hrnet-w32", trusted=True).contract.name == "goatpose-bl"


def test_a_pose_model_is_not_a_detector(tmp_path):
    from goatpose_edge.detection import DetectorError, YoloDetector

    path = stand_in_onnx(str(tmp_path / "stand_in.onnx"))
    with pytest.raises(DetectorError) as refused:
        YoloDetector(path)
    assert str(refused.value) == ("{} is a pose model (goatpose-bl), not a person detector: give a YOLOX, YOLOv5 or "
                                  "YOLOv8 .onnx, or 'hog'".format(path))
