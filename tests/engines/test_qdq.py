"""Explicit INT8: a Q/DQ graph from onnxruntime's static quantization on real COCO crops, its measured accuracy cost
on the CPU, and an INT8 build of it without a calibrator (TensorRT fake)."""

import os
import re

import numpy as np
import onnx
import pytest

from goatpose_edge.cli import main
from goatpose_edge.engines.qdq import QDQ_METADATA_KEY
from goatpose_edge.export.lint import lint
from goatpose_edge.artefact.onnx_meta import read_contract, read_metadata
from tests.helpers import stand_in_pose_onnx
from tests.engines.test_trtfake import TRTFAKE, fake_env, goatpose


@pytest.fixture(scope="module")
def small_pose_onnx(tmp_path_factory):
    """Two seeded convs with GoatPose-BL's I/O and contract (the quantizer's cost grows with the graph: the real
    networks take minutes here, see benchmarks/)."""
    rs = np.random.RandomState(0)
    return stand_in_pose_onnx(str(tmp_path_factory.mktemp("qdq") / "small.onnx"), [
        ((rs.randn(16, 3, 3, 3) * 0.3), {"pads": [1, 1, 1, 1]}), ((rs.randn(17, 16, 4, 4) * 0.1), {"strides": [4, 4]})])


def test_quantize_command_writes_a_trt8_qdq_graph_and_reports_its_cost(small_pose_onnx, shared_data, capsys):
    folder = os.path.join(shared_data, "coco_sample")
    assert main(["quantize", small_pose_onnx, "--calib-coco", os.path.join(folder, "test_coco.json"), folder,
                 "--calib-count", "6"]) == 0
    out = capsys.readouterr().out
    qdq_path = small_pose_onnx[:-len(".onnx")] + "_qdq.onnx"
    assert "calibrating on 6 person crops" in out and "wrote " + qdq_path in out
    line = next(l for l in out.splitlines() if l.startswith("Q/DQ INT8 vs FP32"))
    max_rel = float(re.search(r"max rel (\d\.\d+e[+-]\d+)", line).group(1))
    assert 0 < max_rel < 0.05  # INT8 costs something, but little on this small graph
    model = onnx.load(qdq_path)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert lint(model, "trt8").ok  # symmetric: zero points are 0, as TensorRT requires
    assert read_contract(qdq_path) == read_contract(small_pose_onnx)
    assert QDQ_METADATA_KEY in read_metadata(qdq_path)


@pytest.mark.skipif(not os.path.isdir(TRTFAKE), reason="../shared/tools/trtfake is not beside the checkout")
def test_int8_build_of_a_qdq_graph_needs_no_calibrator(small_pose_onnx, shared_data, tmp_path):
    import json

    folder = os.path.join(shared_data, "coco_sample")
    qdq_path = str(tmp_path / "small_qdq.onnx")
    assert main(["quantize", small_pose_onnx, "--calib-images", folder, "--calib-count", "2", "-o", qdq_path]) == 0
    engine = str(tmp_path / "q.engine")
    result = goatpose(fake_env("10.x", "desktop"), "build", qdq_path, "--precision", "int8", "-o", engine)
    assert result.returncode == 0, result.stderr
    sidecar = json.load(open(str(tmp_path / "q.json")))
    assert sidecar["calibration"] == {"method": "qdq", "source": qdq_path}
    assert not os.path.exists(str(tmp_path / "q.calib"))
