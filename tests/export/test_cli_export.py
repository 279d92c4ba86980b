"""``goatpose export``, ``verify`` and ``lint`` from the command line: outputs, exit codes, one-line errors."""

import os
import subprocess
import sys

import pytest

from goatpose_edge.cli import main
from tests.helpers import goatpose_here


def run_cli(*args, block_torch=False):
    prefix = "import sys; sys.modules['torch'] = None; " if block_torch else "import sys; "
    code = prefix + "from goatpose_edge.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def test_export_prints_parity_and_graph_and_writes_the_file(exports, tmp_path, person_image_arg, capsys, monkeypatch):
    import onnx

    from goatpose_edge.export import onnx_export

    traced = exports.onnx("hrnet-w32").path  # tests/export/test_export.py traces it; here the command's own steps run
    monkeypatch.setattr(onnx_export, "_traced_graph", lambda *args: onnx.load(traced))
    output = str(tmp_path / "w32.onnx")
    code = main(["export", "hrnet-w32", "--weights", exports.checkpoint("hrnet-w32"), "-o", output,
                 "--image", person_image_arg])
    out = capsys.readouterr().out
    assert code == 0 and os.path.isfile(output)
    assert "parity onnxruntime vs torch  random" in out and "crop:000000000785.jpg" in out and " ok" in out
    assert "'bn_after_conv': 0, 'nam_weight_ops': 0" in out
    # the session's checkpoint holds (seeded) random weights, and says so: exporting it does not hide it
    assert out.strip().endswith("wrote {} (dynamic batch, opset 13, trt8-compatible, RANDOM weights)".format(output))


def test_verify_two_artefacts(exports, capsys, person_image_arg):
    flip = exports.onnx("goatpose-bl", fliptest=True, images=(person_image_arg,))  # the flip test's own export, shared
    code = main(["verify", exports.checkpoint("goatpose-bl"), flip.path,
                 "--image", person_image_arg])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 2
    assert out[0].startswith("torch vs onnxruntime: random") and "tolerance 1e-05  ok" in out[0]


@pytest.mark.parametrize("args, message", [
    (["export", "goatpose-bl", "--opset", "14"], "opset 14 is outside 11..13 for --target trt8"),
    (["export", "goatpose-zz"], "unknown model 'goatpose-zz'"),
    (["export", "goatpose-bl", "--weights", "/nonexistent/w.pth"], "checkpoint not found: /nonexistent/w.pth"),
    (["export", "goatpose-bl", "--image", "/nonexistent.jpg"], "cannot read image /nonexistent.jpg"),
    (["export", "goatpose-bl", "--image", "x.jpg@1,2,3"], "bad person box '1,2,3'"),
    (["lint", "/nonexistent.onnx"], "cannot read ONNX file /nonexistent.onnx"),
    (["verify", "/nonexistent.onnx", "/nonexistent2.onnx"], "artefact not found: /nonexistent.onnx"),
])
def test_bad_input_one_line_exit_1(args, message, tmp_path, capsys):
    argv = args + (["-o", str(tmp_path / "x.onnx")] if args[0] == "export" else [])
    if args[0] == "verify":  # verify's one run as a process here; the others through main in process
        result = run_cli(*argv)
        code, err = result.returncode, result.stderr
    else:
        code, _, err = goatpose_here(capsys, *argv)
    assert code == 1, err
    error_lines = [line for line in err.splitlines() if line.startswith("goatpose: error: ")]
    assert len(error_lines) == 1 and message in error_lines[0] and "Traceback" not in err
    assert not os.listdir(str(tmp_path))


def test_export_without_torch_says_what_to_install(tmp_path):
    result = run_cli("export", "goatpose-bl", "-o", str(tmp_path / "x.onnx"), block_torch=True)
    assert result.returncode == 1
    assert "goatpose: error: goatpose export needs PyTorch and onnx (host side)" in result.stderr


def test_lint_cli_on_an_exported_file_and_a_bad_one(exports, tmp_path, capsys):
    code, out, _ = goatpose_here(capsys, "lint", exports.onnx("goatpose-bl").path)  # in process; a process below
    assert code == 0 and out.strip().endswith("trt8-compatible")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("NonZero", ["x"], ["y"], name="nz")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    path = str(tmp_path / "bad.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = run_cli("lint", path)
    assert result.returncode == 1
    assert result.stderr.strip() == ("goatpose: error: {} is not TensorRT 8-compatible: 1 problem(s): nz (NonZero): "
                                     "operator not supported by the TensorRT 8.2 ONNX parser".format(path))
    assert goatpose_here(capsys, "lint", path, "--target", "trt10")[0] == 0
