"""The torch-free ONNX metadata reader agrees with the onnx package and fails cleanly on bad files."""

import onnx
import pytest
from onnx import TensorProto, helper

from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.errors import ContractError
from goatpose_edge.artefact.onnx_meta import OnnxFileError, read_contract, read_metadata
from goatpose_edge.variants import VARIANTS


def _save(tmp_path, props):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], doc_string="d" * 300)
    onnx.helper.set_model_props(model, props)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    return path


def test_reads_what_onnx_wrote(tmp_path):
    contract = VARIANTS["goatpose-xl"].contract
    props = {"a": "1", METADATA_KEY: contract.to_json(), "unicode": "Ziege \u00fcber alles"}
    path = _save(tmp_path, props)
    assert read_metadata(path) == props == {p.key: p.value for p in onnx.load(path).metadata_props}
    assert read_contract(path) == contract


def test_missing_contract(tmp_path):
    with pytest.raises(ContractError, match="carries no goatpose model contract"):
        read_contract(_save(tmp_path, {"a": "1"}))


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(OnnxFileError, match="cannot read ONNX file"):
        read_metadata(str(tmp_path / "none.onnx"))
    path = _save(tmp_path, {METADATA_KEY: "{}"})
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-5])
    with pytest.raises(OnnxFileError, match="not a valid ONNX file or is truncated"):
        read_metadata(path)
