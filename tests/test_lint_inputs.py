"""`goatpose lint` and the metadata reader on files that are no ONNX model: an empty file, text, JSON, a ModelProto
with an empty graph. Each fails in one line; none passes as compatible."""

import onnx
import pytest
from onnx import TensorProto, helper

from goatpose_edge.cli import main
from goatpose_edge.errors import ContractError
from goatpose_edge.export.lint import lint
from goatpose_edge.artefact.onnx_meta import OnnxFileError, read_contract, read_metadata


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _relu_model():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def _write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_real_model_still_passes(tmp_path, capsys):  # the control: the refusals below are not blanket ones
    path = str(tmp_path / "relu.onnx")
    onnx.save(_relu_model(), path)
    code, out, err = _run(capsys, "lint", path)
    assert code == 0 and out.strip() == "{}: trt8-compatible".format(path) and err == ""


def test_empty_file_fails_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, "empty.onnx", b"")
    code, out, err = _run(capsys, "lint", path)
    assert code == 1 and "compatible" not in out
    assert err.count("\n") == 1 and err.startswith("goatpose: error: {} is an empty file".format(path))
    assert "not an ONNX model" in err


@pytest.mark.parametrize("data", [b"hello, I am a text file\n", b'{"graph": []}', b"\x89PNG\r\n\x1a\n\x00\x00",
                                  b"\x00\x00\x00\x00", b"\x08\x07"],  # the last: an IR version and nothing else
                         ids=["text", "json", "png", "zeros", "ir-version-only"])
def test_non_onnx_files_fail_in_one_line(tmp_path, capsys, data):
    path = _write(tmp_path, "junk.onnx", data)
    code, out, err = _run(capsys, "lint", path)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("goatpose: error: {} is not an ONNX model".format(path)), err
    assert "internal error" not in err


def test_a_graph_without_nodes_or_inputs_is_not_compatible(tmp_path, capsys):
    model = onnx.ModelProto(ir_version=7, graph=onnx.GraphProto(name="empty"))
    model.opset_import.extend([helper.make_opsetid("", 13)])
    path = str(tmp_path / "hollow.onnx")
    onnx.save(model, path)
    code, out, err = _run(capsys, "lint", path)
    assert code == 1 and "compatible" not in out
    assert err.count("\n") == 1 and "is not TensorRT 8-compatible" in err
    assert "the graph has no nodes" in err and "the graph has no inputs" in err and "no outputs" in err
    assert _run(capsys, "lint", path, "--target", "trt10")[0] == 1


def test_lint_of_an_empty_model_proto_reports_it():
    report = lint(onnx.ModelProto())
    assert not report.ok
    assert any("no IR version" in v for v in report.violations) and any("no opset_import" in v
                                                                         for v in report.violations)
    assert lint(_relu_model()).ok


def test_metadata_reader_names_an_empty_file_not_a_missing_contract(tmp_path):
    path = _write(tmp_path, "empty.onnx", b"")
    for reader in (read_metadata, read_contract):
        with pytest.raises(OnnxFileError, match="is an empty file") as caught:
            reader(path)
        assert "contract" not in str(caught.value) and "\n" not in str(caught.value)
    junk = _write(tmp_path, "junk.onnx", b"not onnx at all")
    with pytest.raises(OnnxFileError, match="is not an ONNX model"):
        read_contract(junk)
    valid = str(tmp_path / "relu.onnx")
    onnx.save(_relu_model(), valid)
    assert read_metadata(valid) == {}
    with pytest.raises(ContractError, match="carries no goatpose model contract"):  # a real ONNX without our entry
        read_contract(valid)


def test_load_model_names_a_graph_that_does_not_parse(tmp_path):
    from goatpose_edge.export.lint import load_model

    path = str(tmp_path / "relu.onnx")
    onnx.save(_relu_model(), path)
    data = bytearray(open(path, "rb").read())
    data[data.index(b"Relu") - 1] = 0xFF  # a length inside the graph that runs past its end
    corrupt = _write(tmp_path, "corrupt.onnx", bytes(data))
    read_metadata(corrupt)  # the top level is still fine: only parsing the graph finds it
    with pytest.raises(OnnxFileError, match="is not an ONNX model \\(it does not parse"):
        load_model(corrupt)
    text_suffix = _write(tmp_path, "relu.txt", open(path, "rb").read())  # protobuf, whatever the suffix says
    assert lint(load_model(text_suffix)).ok
    with pytest.raises(OnnxFileError, match="is an empty file"):
        load_model(_write(tmp_path, "empty.onnx", b""))
