"""NaN and Inf never pass a gate (export parity, ``goatpose verify``, the Q/DQ report, the engine check), NaN/Inf
weights are refused before an export, and ``--image IMG@x,y,w,h`` refuses boxes that make no crop."""

import os

import cv2
import numpy as np
import pytest
import torch

from goatpose_edge.cli import main
from goatpose_edge.compare import nonfinite_outputs
from goatpose_edge.engines.qdq import QdqAccuracyError, qdq_accuracy
from goatpose_edge.engines.verify import EngineVerifyError, check as check_engine, verify_engine
from goatpose_edge.errors import CheckpointError, GoatPoseError
from goatpose_edge.export import onnx_export
from goatpose_edge.export.parity import ParityError, check, compare, verify_runners
from goatpose_edge.image_args import parity_inputs, parse_image_arg
from goatpose_edge.runtime.base import Runner
from goatpose_edge.variants import VARIANTS
from tests.helpers import SHARED_DATA as SHARED
from tests.helpers import stand_in_pose_onnx

CONTRACT = VARIANTS["goatpose-bl"].contract  # input [N, 3, 256, 192], heatmaps [N, 17, 64, 48]


def _cli_error(capsys, argv):
    """Run the CLI in-process; assert exit 1 with exactly one ``goatpose: error:`` line and return its message."""
    status = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("goatpose: ")]
    assert status == 1, err
    assert len(lines) == 1 and lines[0].startswith("goatpose: error: ") and "Traceback" not in err, err
    return lines[0][len("goatpose: error: "):]


def _heatmaps(x):
    """Finite heatmaps that depend on the input: the per-sample mean, broadcast to GoatPose-BL's output."""
    return np.ascontiguousarray(np.broadcast_to(x.mean(axis=(1, 2, 3))[:, None, None, None],
                                                (len(x), 17, 64, 48))).astype(np.float32)


class FakeRunner(Runner):
    backend = "fake"

    def __init__(self, path, poison=None, contract=CONTRACT):
        super().__init__(path)
        self.contract, self.poison = contract, poison

    def _activate(self):
        pass

    def _deactivate(self):
        pass

    def _infer(self, batch):
        out = _heatmaps(batch)
        if self.poison is not None:
            out[:, 3, 10, 10] = self.poison
        return out


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Stand-in pose graphs run by the real onnxruntime: seeded finite convs, and the same with NaN weights."""
    folder = tmp_path_factory.mktemp("nonfinite")
    rs = np.random.RandomState(0)
    first, second = rs.randn(16, 3, 3, 3) * 0.3, rs.randn(17, 16, 4, 4) * 0.1
    bad = second.copy()
    bad[5, 2, 1, 1] = np.nan
    layers = lambda w: [(first, {"pads": [1, 1, 1, 1]}), (w, {"strides": [4, 4]})]  # noqa: E731
    return (stand_in_pose_onnx(str(folder / "finite.onnx"), layers(second)),
            stand_in_pose_onnx(str(folder / "nan.onnx"), layers(bad)))


@pytest.fixture(scope="module")
def person_jpg(tmp_path_factory):
    """A 120x80 (W x H) photo-like image."""
    path = str(tmp_path_factory.mktemp("img") / "person.jpg")
    image = (np.random.RandomState(1).rand(80, 120, 3) * 255).astype(np.uint8)
    assert cv2.imwrite(path, image)
    return path


# The one check every gate shares.

def test_nonfinite_outputs_counts_nan_and_inf_per_side():
    a = np.zeros((2, 3), np.float32)
    b = a.copy()
    b[0, 0], b[1, 2] = np.nan, -np.inf
    assert nonfinite_outputs([("a", a), ("b", a)]) == ""
    assert nonfinite_outputs([("a", a), ("b", b)]) == "non-finite output (NaN/Inf) in b (1 NaN, 1 Inf of 6 values)"
    assert nonfinite_outputs([("a", b), ("b", b)]).count("NaN, 1 Inf of 6 values") == 2


# Export parity reports and check().

@pytest.mark.parametrize("where", ["both", "reference", "test"])
def test_parity_report_fails_on_nan(where):
    reference = np.random.RandomState(0).rand(2, 17, 64, 48).astype(np.float32)
    test = reference.copy()
    if where in ("both", "reference"):
        reference[0, 0, 0, 0] = np.nan
    if where in ("both", "test"):
        test[1, 2, 3, 4] = np.nan
    report = compare("random", reference, test, 1e-4, ("torch", "onnxruntime"))
    assert not report.ok  # both NaN: before, max rel was 0 and the report said ok
    named = {"both": "torch (1 NaN, 0 Inf of 104448 values) and onnxruntime", "reference": "torch (1 NaN",
             "test": "onnxruntime (1 NaN"}[where]
    assert "non-finite output (NaN/Inf) in " + named in report.line() and report.line().endswith("FAIL")
    with pytest.raises(ParityError, match=r"x.onnx: parity failed on random: non-finite output \(NaN/Inf\) in "):
        check([compare("crop:a.jpg", np.ones(3), np.ones(3), 1e-4), report], "x.onnx")  # the first failure


def test_parity_report_fails_on_inf_and_passes_when_finite():
    reference = np.ones((1, 17, 64, 48), np.float32)
    assert compare("random", reference, reference + 1e-6, 1e-4).ok  # the gate can pass
    assert not compare("random", reference, reference + 1e-3, 1e-4).ok
    test = reference.copy()
    test[0, 0, 0, 0] = np.inf
    report = compare("random", reference, test, 1e-4)
    assert not report.ok and "in test (0 NaN, 1 Inf of 52224 values)" in report.line()
    check([compare("random", reference, reference, 1e-4)], "x")  # finite and equal: no error


# goatpose verify.

@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("side", ["reference", "test"])
def test_verify_runners_fails_on_nonfinite_output(poison, side):
    good, bad, other = FakeRunner("good.onnx"), FakeRunner("bad.onnx", poison), FakeRunner("good2.onnx")
    pair = (bad, good) if side == "reference" else (good, bad)
    with good, bad, other:
        reports = verify_runners(*pair)
        assert all(r.ok for r in verify_runners(good, other))  # the gate can pass
    assert [r.label for r in reports] == ["random"] and not reports[0].ok
    assert "non-finite output (NaN/Inf) in bad.onnx (" in reports[0].line()


def test_verify_runners_flip_side_fails_on_nan():
    from dataclasses import replace

    plain, flipped = FakeRunner("plain.onnx", np.nan), FakeRunner("flip.onnx", contract=replace(CONTRACT,
                                                                                                flip_merged=True))
    with plain, flipped:
        report, = verify_runners(flipped, plain)  # swapped so the plain side is merged in numpy
    assert not report.ok and "in plain.onnx" in report.line()


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), -1.0])
def test_verify_refuses_a_tolerance_that_cannot_gate(tolerance):
    with pytest.raises(GoatPoseError, match="--tolerance must be a finite number >= 0"):
        verify_runners(FakeRunner("a.onnx"), FakeRunner("b.onnx"), tolerance=tolerance)


def test_goatpose_verify_fails_on_nan_heatmaps(graphs, capsys):
    finite, nan = graphs
    assert main(["verify", finite, finite]) == 0  # the same graph twice passes
    assert capsys.readouterr().out.strip().endswith("ok")
    message = _cli_error(capsys, ["verify", finite, nan])
    assert message.startswith("{} vs {}: parity failed on random: non-finite output (NaN/Inf) in {} (".format(
        finite, nan, nan))
    message = _cli_error(capsys, ["verify", nan, finite])  # a NaN reference fails too
    assert "non-finite output (NaN/Inf) in {} (".format(nan) in message


# The Q/DQ report.

def test_qdq_accuracy_fails_on_nan(graphs):
    finite, nan = graphs
    crops = np.random.RandomState(2).standard_normal((2, 3, 256, 192)).astype(np.float32)
    same = qdq_accuracy(finite, finite, crops)
    assert same.ok and same.max_abs == 0.0 and same.keypoint_max_px == 0.0
    with pytest.raises(QdqAccuracyError, match=r"non-finite output \(NaN/Inf\) in Q/DQ INT8 .*nan.onnx.*FAIL; "):
        qdq_accuracy(finite, nan, crops)
    report = qdq_accuracy(nan, finite, crops, strict=False)
    assert not report.ok and "in FP32 {} (".format(nan) in report.line() and report.line().endswith("FAIL")


def test_goatpose_quantize_fails_on_nan(graphs, tmp_path, monkeypatch, capsys):
    from goatpose_edge.engines import qdq

    finite, nan = graphs
    folder = tmp_path / "calib"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / "{}.jpg".format(index)), (np.random.RandomState(index).rand(96, 64, 3) * 255)
                    .astype(np.uint8))
    # A quantizer that yields a NaN graph (the real one takes far longer; its output is what is gated here).
    monkeypatch.setattr(qdq, "quantize_qdq", lambda onnx_path, crops, output: open(output, "wb").write(
        open(nan, "rb").read()))
    message = _cli_error(capsys, ["quantize", finite, "--calib-images", str(folder), "-o", str(tmp_path / "q.onnx")])
    assert message.startswith("Q/DQ INT8 vs FP32 (onnxruntime, CPU): non-finite output (NaN/Inf) in Q/DQ INT8 ")


# The engine check of goatpose build --verify.

class FakeEngine(FakeRunner):
    backend = "tensorrt"

    def __init__(self, path, reference, poison=None):
        super().__init__(path, poison)
        self.reference, self.max_batch = reference, 4
        self.sidecar = type("Sidecar", (), {"effective_precision": "fp16"})()

    def _infer(self, batch):
        from goatpose_edge.runtime.onnxruntime_runner import OnnxRuntimeRunner

        with OnnxRuntimeRunner(self.reference, providers=["CPUExecutionProvider"]) as runner:
            out = runner.infer(batch)
        if self.poison is not None:
            out[0, 1, 2, 3] = self.poison
        return out


@pytest.mark.parametrize("poison", [None, np.nan, np.inf])
def test_engine_verification_fails_on_nonfinite_output(poison, graphs, person_jpg, monkeypatch):
    import goatpose_edge.runtime as runtime

    finite, _ = graphs
    real = runtime.load_runner
    monkeypatch.setattr(runtime, "load_runner", lambda path, **options: FakeEngine(path, finite, poison)
                        if path.endswith(".engine") else real(path, **options))
    report = verify_engine(finite, "model.engine", images=[person_jpg, person_jpg + "@10,5,40,60"])
    assert report.count == 2
    if poison is None:
        assert report.ok and report.max_abs == 0.0
        check_engine(report)
        return
    assert not report.ok and report.line().endswith("FAIL")
    assert "non-finite output (NaN/Inf) in fp16 engine model.engine (" in report.line()
    with pytest.raises(EngineVerifyError, match=r"non-finite output \(NaN/Inf\)"):
        check_engine(report)


def test_engine_verification_fails_on_nan_reference(graphs, person_jpg, monkeypatch):
    import goatpose_edge.runtime as runtime

    finite, nan = graphs
    real = runtime.load_runner
    monkeypatch.setattr(runtime, "load_runner", lambda path, **options: FakeEngine(path, finite)
                        if path.endswith(".engine") else real(path, **options))
    report = verify_engine(nan, "model.engine", images=[person_jpg])
    assert not report.ok and "in onnxruntime FP32 {} (".format(nan) in report.line()


# Export refuses NaN/Inf weights before exporting.

@pytest.fixture(scope="module")
def bl_weights(exports):
    return torch.load(exports.checkpoint("goatpose-bl"), map_location="cpu", weights_only=True)


def _poisoned(bl_weights, tmp_path, key, count, value):
    payload = dict(bl_weights, state_dict=dict(bl_weights["state_dict"]))
    tensor = payload["state_dict"][key].clone()
    tensor.view(-1)[:count] = value
    payload["state_dict"][key] = tensor
    path = str(tmp_path / "poisoned.pth")
    torch.save(payload, path)
    return path


@pytest.fixture
def no_export(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was exported although its weights hold NaN/Inf")

    monkeypatch.setattr(onnx_export, "_torch_export", refuse)


@pytest.mark.parametrize("key, count, value", [
    ("stage2.0.branches.0.0.conv1.primary_conv.0.weight", 12, float("nan")),
    ("bn1.running_var", 1, float("inf")),  # a buffer, not a parameter
])
def test_export_refuses_nonfinite_weights_naming_the_tensor(key, count, value, bl_weights, tmp_path, no_export,
                                                            capsys):
    path = _poisoned(bl_weights, tmp_path, key, count, value)
    output = str(tmp_path / "x.onnx")
    message = _cli_error(capsys, ["export", "goatpose-bl", "--weights", path, "-o", output])
    assert message.startswith("checkpoint {}: tensor {} holds {} NaN/Inf values; refusing to export".format(
        path, key, count))
    assert not os.path.exists(output)


def test_require_finite_names_the_first_tensor_and_counts_the_rest():
    from goatpose_edge.models.checkpoint import require_finite

    state = {"a": torch.zeros(4), "steps": torch.tensor(3), "b": torch.tensor([1.0, float("nan"), -float("inf")]),
             "c": torch.full((2, 2), float("inf"))}
    with pytest.raises(CheckpointError, match=r"^w.pth: tensor b holds 2 NaN/Inf values \(and 1 more tensors\); "
                                              r"refusing to export: "):
        require_finite(state, "w.pth")
    require_finite({"a": torch.zeros(4), "steps": torch.tensor(3)}, "w.pth")  # finite: no error


# --image IMG@x,y,w,h.

@pytest.mark.parametrize("box, why", [
    ("nan,0,10,10", "NaN or infinite number"),
    ("0,0,inf,10", "NaN or infinite number"),
    ("0,-1e999,10,10", "NaN or infinite number"),
    ("0,0,0,10", "width and height must be at least 1 pixel, got 0 x 10"),
    ("0,0,10,-5", "width and height must be at least 1 pixel, got 10 x -5"),
    ("1,2,3", "3 number(s) instead of 4"),
    ("1,2,3,4,5", "5 number(s) instead of 4"),
    ("", "0 number(s) instead of 4"),
    ("a,b,c,d", "not numbers"),
])
def test_bad_box_numbers(box, why):
    text = "photo.jpg@" + box
    with pytest.raises(GoatPoseError) as info:
        parse_image_arg(text)
    assert str(info.value) == ("bad person box {!r} in --image {!r}: {}; expected IMAGE@x,y,w,h (pixels, w and h >= 1)"
                               .format(box, text, why))


@pytest.mark.parametrize("box", ["120,0,10,10", "0,80,10,10", "-10,0,10,10", "0,-20,10,19.5", "500,500,5,5"])
def test_box_wholly_outside_the_image(box, person_jpg):
    with pytest.raises(GoatPoseError, match=r"bad person box '{}' in --image '.*person.jpg@{}': the box lies wholly "
                                            r"outside the 120x80 image".format(box, box)):
        parity_inputs(CONTRACT, None, [person_jpg + "@" + box])


def test_boxes_that_overlap_give_crops(person_jpg, tmp_path):
    inputs = parity_inputs(CONTRACT, 3, [person_jpg, person_jpg + "@-10,-10,20,20", person_jpg + "@119,79,50,50"])
    assert [label for label, _ in inputs] == ["random"] + ["crop:person.jpg"] * 3
    assert all(x.shape == (3, 3, 256, 192) and np.isfinite(x).all() for _, x in inputs)
    at_sign = str(tmp_path / "photo@2x.jpg")  # an existing file whose name holds '@' is a whole image
    cv2.imwrite(at_sign, cv2.imread(person_jpg))
    assert parse_image_arg(at_sign) == (at_sign, None)
    with pytest.raises(GoatPoseError, match="the box is over 100 times the 120x80 image"):
        parity_inputs(CONTRACT, None, [person_jpg + "@0,0,1e30,1e30"])


def test_missing_and_unreadable_images(tmp_path):
    with pytest.raises(GoatPoseError, match=r"cannot read image {}: no such file \(--image '{}@1,2,3,4'\)".format(
            tmp_path / "nope.jpg", tmp_path / "nope.jpg")):
        parity_inputs(CONTRACT, None, [str(tmp_path / "nope.jpg") + "@1,2,3,4"])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(GoatPoseError, match=r"notes.jpg is not an image OpenCV can decode .*\(--image '"):
        parity_inputs(CONTRACT, None, [str(text)])
    cut = tmp_path / "cut.jpg"  # half a real photo: OpenCV would decode it with a grey bottom half
    cut.write_bytes(open(os.path.join(SHARED, "coco_sample", "000000000785.jpg"), "rb").read()[:20000])
    with pytest.raises(GoatPoseError, match=r"cut.jpg is a truncated or corrupt JPEG"):
        parity_inputs(CONTRACT, None, [str(cut)])
    with pytest.raises(GoatPoseError, match="cannot read image .*: no such file"):
        parity_inputs(CONTRACT, None, [str(tmp_path)])  # a folder


@pytest.mark.parametrize("suffix, message", [
    ("@nan,0,10,10", "NaN or infinite number"),
    ("@0,0,10,0", "width and height must be at least 1 pixel"),
    ("@1,2,3", "3 number(s) instead of 4"),
    ("@1000,1000,10,10", "the box lies wholly outside the 120x80 image"),
])
def test_verify_refuses_bad_boxes_in_one_line(suffix, message, person_jpg, graphs, capsys):
    text = person_jpg + suffix
    error = _cli_error(capsys, ["verify", graphs[0], graphs[0], "--image", text])
    assert error.startswith("bad person box ") and "in --image {!r}".format(text) in error and message in error


def test_export_refuses_a_box_outside_the_image_before_exporting(person_jpg, tmp_path, no_export, capsys):
    text = person_jpg + "@-100,20,50,50"
    output = str(tmp_path / "x.onnx")
    error = _cli_error(capsys, ["export", "goatpose-bl", "-o", output, "--image", text])
    assert error == ("bad person box '-100,20,50,50' in --image {!r}: the box lies wholly outside the 120x80 image; "
                     "expected IMAGE@x,y,w,h (pixels, w and h >= 1)".format(text))
    assert not os.path.exists(output)
