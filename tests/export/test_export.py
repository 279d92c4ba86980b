"""Exported graphs of one variant per family: TensorRT 8 op set, clean graph, contract in metadata, parity with
PyTorch."""

import os
import shutil

import numpy as np
import onnx
import pytest

from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.errors import CheckpointError, GoatPoseError
from goatpose_edge.export import export_onnx
from goatpose_edge.export.graph import DIRT
from goatpose_edge.export.parity import ParityError
from goatpose_edge.fileio import OutputPathError
from goatpose_edge.artefact.onnx_meta import read_contract
from goatpose_edge.runtime import load_runner
from goatpose_edge.variants import VARIANTS
from tests.helpers import SHARED_DATA

#: exported at full size (the suite's time goes into exports: 15-20 s each on this box): GoatPose-BL (LiteConv + NAM)
#: and HRNet-W32 (plain convolutions), between them every block and NAM the exporter sees; the other variants differ
#: in widths, depths, input size or where NAM sits, which tests/models checks on the torch modules on small inputs
#: (NAM-HRNet's 26 folded NAMs: tests/models/test_nam.py), and `goatpose export` of each stays a command away
ALL = ["goatpose-bl", "hrnet-w32"]
assert set(ALL) <= set(VARIANTS)


def _trt82_ops_from_shared():
    path = os.path.join(os.path.dirname(SHARED_DATA), "tools", "trt82_onnx_ops.txt")
    if not os.path.isfile(path):
        pytest.skip("../shared/tools/trt82_onnx_ops.txt is not beside the checkout")
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize("name", ALL)
def test_every_op_is_parsed_by_tensorrt_82(exports, name):
    model = onnx.load(exports.onnx(name).path)
    assert {n.op_type for n in model.graph.node} <= _trt82_ops_from_shared()
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert model.ir_version == 7
    assert exports.onnx(name).lint.ok and not exports.onnx(name).lint.warnings
    resizes = [{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
               for node in model.graph.node if node.op_type == "Resize"]
    assert resizes and {(r["mode"], r["coordinate_transformation_mode"]) for r in resizes} == {
        (b"nearest", b"asymmetric")}


@pytest.mark.parametrize("name", ALL)
def test_graph_is_clean(exports, name):
    census = exports.onnx(name).census
    assert {k: census[k] for k in DIRT} == {k: 0 for k in DIRT}
    assert census.get("op:Slice", 0) == 0  # LiteConv's concat has exactly C_out channels
    if not VARIANTS[name].lite:  # every BatchNorm of plain HRNet follows a conv and is folded into it
        assert census.get("op:BatchNormalization", 0) == 0
    nams = 26 if VARIANTS[name].nam else 0
    assert census.get("op:Sigmoid", 0) == nams  # one gate per NAM, from two constant vectors (Mul, Add)


@pytest.mark.parametrize("name", ALL)
def test_io_names_shapes_and_contract(exports, name):
    result = exports.onnx(name)
    model = onnx.load(result.path)
    height, width = VARIANTS[name].input_size

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    contract = result.contract  # the one home of the tensor names
    assert [i.name for i in model.graph.input] == [contract.input_name]
    assert [o.name for o in model.graph.output] == [contract.output_name]
    assert dims(model.graph.input[0]) == ["batch", 3, height, width]
    assert dims(model.graph.output[0]) == ["batch", 17, height // 4, width // 4]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    stored = read_contract(result.path)
    assert stored == result.contract and stored.name == name and not stored.flip_merged
    assert {p.key: p.value for p in model.metadata_props}[METADATA_KEY] == result.contract.to_json()


@pytest.mark.parametrize("name", ALL)
def test_onnxruntime_matches_pytorch(exports, name):
    reports = exports.onnx(name).parity
    assert [r.label for r in reports] == ["random"]
    assert reports[0].ok and reports[0].max_rel <= 1e-4 and reports[0].ref_max > 0.1


def test_parity_on_a_real_person_crop(exports, person_image_arg):
    result = exports.onnx("goatpose-bl", fliptest=True, images=(person_image_arg,))  # shared with the flip test below
    labels = [r.label for r in result.parity]
    assert labels == ["random", "crop:000000000785.jpg"] and all(r.ok for r in result.parity)


def test_runners_agree_on_the_exported_artefact(exports, person_image_arg):
    """The .pth through the torch runner and the .onnx through onnxruntime, compared by the verify code."""
    from goatpose_edge.export import verify_runners

    with load_runner(exports.checkpoint("hrnet-w32")) as torch_runner, \
            load_runner(exports.onnx("hrnet-w32").path) as onnx_runner:
        reports = verify_runners(torch_runner, onnx_runner, [person_image_arg])
    assert len(reports) == 2 and all(r.ok for r in reports)


def test_static_batch(exports):
    result = exports.onnx("goatpose-bl", batch=3)
    model = onnx.load(result.path)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [3, 3, 256, 192]
    assert os.path.basename(result.path) == "goatpose-bl_b3.onnx" and result.parity[0].ok
    with load_runner(result.path) as runner:
        assert (runner.min_batch, runner.max_batch) == (3, 3)


def test_fliptest_graph_matches_the_numpy_flip_merge(exports, person_image_arg):
    result = exports.onnx("goatpose-bl", fliptest=True, images=(person_image_arg,))
    assert read_contract(result.path).flip_merged
    assert all(r.ok and r.tolerance.max_rel == 1e-5 for r in result.parity) and len(result.parity) == 2
    # Independently: the plain graph run twice through onnxruntime, merged by the codec, equals the flip graph.
    from goatpose_edge.codec import merge_flip
    from goatpose_edge.image_args import parity_inputs

    _, crops = parity_inputs(result.contract, None, [person_image_arg])[1]
    batch = np.concatenate([crops, np.random.RandomState(7).standard_normal(crops.shape).astype(np.float32)])
    with load_runner(exports.onnx("goatpose-bl").path) as plain, load_runner(result.path) as flip:
        expected = merge_flip(plain.infer(batch), plain.infer(batch[:, :, :, ::-1].copy()), result.contract.flip_pairs)
        merged = flip.infer(batch)
        unmerged = plain.infer(batch)
    scale = np.abs(expected).max()
    assert np.abs(merged - expected).max() <= 1e-5 * scale
    assert np.abs(unmerged - expected).max() > 1e-2 * scale  # the flip really changes the heatmaps


@pytest.mark.parametrize("opset, target", [(14, "trt8"), (10, "trt8"), (18, "trt10")])
def test_opset_outside_the_target_range(opset, target, tmp_path):
    with pytest.raises(GoatPoseError, match="opset {} is outside".format(opset)):
        export_onnx("goatpose-bl", output=str(tmp_path / "x.onnx"), opset=opset, target=target)
    assert not os.listdir(str(tmp_path))


def test_weights_of_another_variant(exports, tmp_path):
    with pytest.raises(CheckpointError, match="does not fit goatpose-bl.*its weights fit hrnet-w32"):
        export_onnx("goatpose-bl", weights=exports.checkpoint("hrnet-w32"), output=str(tmp_path / "x.onnx"))
    assert not os.listdir(str(tmp_path))


def test_unwritable_output(exports, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputPathError, match="file, not a folder"):
        export_onnx("goatpose-bl", weights=exports.checkpoint("goatpose-bl"), output=str(blocker / "sub" / "x.onnx"))


def _traced_from_the_session(monkeypatch, exports, name):
    """The file-handling tests trace no network: the torch.onnx.export step returns the session export's graph
    (10 s saved each); every step after it (clean-up, metadata, checker, lint, parity, the atomic write) runs."""
    from goatpose_edge.export import onnx_export

    path = exports.onnx(name).path  # made (or found) before the step is replaced
    monkeypatch.setattr(onnx_export, "_traced_graph", lambda *args: onnx.load(path))


def test_failed_parity_leaves_the_previous_file_untouched(exports, tmp_path, monkeypatch):
    from goatpose_edge.export import onnx_export

    _traced_from_the_session(monkeypatch, exports, "goatpose-bl")
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", 0.0)
    with pytest.raises(ParityError, match="parity failed on random"):
        export_onnx("goatpose-bl", weights=exports.checkpoint("goatpose-bl"), output=str(target))
    assert target.read_bytes() == b"previous" and os.listdir(str(tmp_path)) == ["model.onnx"]


def test_re_export_over_an_existing_file(exports, tmp_path, monkeypatch):
    _traced_from_the_session(monkeypatch, exports, "hrnet-w32")
    target = tmp_path / "model.onnx"
    shutil.copy(exports.onnx("goatpose-bl").path, str(target))  # a previous export of another model
    result = export_onnx("hrnet-w32", weights=exports.checkpoint("hrnet-w32"), output=str(target))
    assert os.listdir(str(tmp_path)) == ["model.onnx"] and read_contract(str(target)).name == "hrnet-w32"
    assert all(r.ok for r in result.parity)  # the file written is the new model's, checked against its weights
