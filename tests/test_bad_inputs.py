"""Every command, given inputs that are empty files or text files under the right names, answers in one line with a
non-zero exit: never a traceback, never "internal error" (the input is at fault). In process, for speed (native
crashes on odd frames: tests/detection/test_odd_frames.py, in subprocesses). Generated
from tests/test_io_guard.py's MINIMAL command lines, so a new command inherits it."""

import os

import pytest

from goatpose_edge.cli import main
from tests.test_io_guard import MINIMAL, _materialise

WITH_INPUTS = sorted(c for c, argv in MINIMAL.items() if any("{" in a and "fresh" not in a for a in argv))


@pytest.mark.parametrize("content", [b"", b"some text, not what the name says\n", b"\x00" * 64],
                         ids=["empty", "text", "zeros"])
@pytest.mark.parametrize("command", WITH_INPUTS)
def test_unusable_inputs_get_one_line(command, content, tmp_path, monkeypatch, capsys):
    argv = _materialise(str(tmp_path), MINIMAL[command], content)
    if command == "init":
        argv[-1] = str(tmp_path / "fresh.pth")
    before = {n: open(os.path.join(str(tmp_path), n), "rb").read() for n in os.listdir(str(tmp_path))
              if os.path.isfile(os.path.join(str(tmp_path), n))}
    monkeypatch.chdir(str(tmp_path))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own one line
        code = exc.code
    stderr = capsys.readouterr().err
    if command == "init":  # its only input is the model name: it must just work
        assert code == 0, stderr
        return
    assert code in (1, 2), (code, stderr)
    lines = [l for l in stderr.splitlines() if not l.startswith(("WARNING", "note:", "[ WARN"))]
    assert len(lines) == 1 and lines[0].startswith("goatpose"), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    after = {n: open(os.path.join(str(tmp_path), n), "rb").read() for n in before}
    assert after == before  # inputs untouched


@pytest.mark.parametrize("argv, message", [
    (["build", "m.onnx", "--batch", "4", "--max-batch", "16"], "--batch N fixes the batch"),
    (["bench", "m.onnx", "--max-frames", "3"], "--max-frames sets the video pipeline: add --video FILE"),
    (["bench", "m.onnx", "--flip"], "--flip sets the video pipeline: add --video FILE"),
    (["info", "--all", "goatpose-bl"], "give model names or --all, not both"),
    (["bench", "m.onnx", "--out", ""], "--out  is a folder"),
    (["verify", ".", "m.onnx"], ". is a folder: give the artefact file"),
    (["quantize", "m.onnx", "--calib-images", "m.onnx"], "--calib-images m.onnx is a file"),
    (["init", "goatpose-bl", "-o", "x.pth", "--seed", "99999999999999999999"], "expected a seed below 2**32"),
    (["eval", "m.onnx", "--coco-root", ".", "--threads", "100000"], "expected at most"),
])
def test_conflicting_or_ignored_options_are_refused(argv, message, tmp_path, monkeypatch, capsys):
    """Options that would be silently dropped, or numbers that would take the machine down, get one line."""
    monkeypatch.chdir(str(tmp_path))
    with open("m.onnx", "w") as f:
        f.write("not read: the options fail first")
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code in (1, 2) and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, message", [
    (["train", "goatpose-bl", "--epochs", "0"], "argument --epochs: --epochs must be a whole number >= 1, got 0"),
    (["train", "goatpose-bl", "--lr", "nan"], "argument --lr: --lr must be a finite number > 0, got nan"),
    (["train", "goatpose-bl", "--device", "tpu"], "argument --device: --device must be auto, cpu, cuda"),
    (["train", "goatpose-bl", "--resume", "m.onnx", "--init-from", "m.onnx"], "give --resume (continue a run) or"),
    (["build", "m.onnx", "--batch", "4", "--min-batch", "2"], "--batch N fixes the batch"),
    (["build", "m.onnx", "--calib-images", "."], "--calib-images calibrates an INT8 build: add --precision int8"),
    (["build", "m.onnx", "--calib-count", "8", "--precision", "fp16"], "--calib-count calibrates an INT8 build"),
    (["build", "m.onnx", "--calib-coco", "m.onnx", "."], "--calib-coco calibrates an INT8 build"),
    (["build", "m.onnx", "--image", "m.onnx"], "--image is a photo for --verify: add --verify"),
    (["bench", "m.onnx", "--baseline", "hrnet-w99"], "--baseline hrnet-w99 is neither one of the artefacts (m.onnx) "
                                                     "nor a model name (goatpose-bl, "),
    (["bench", "m.onnx", "--video", "m.onnx", "--pipeline", "sequential", "--detect", "async"],
     "--pipeline sequential with --detect async is no configuration"),
    (["bench", "m.onnx", "--person-batching"], "--person-batching needs --video"),
    (["pose", "m.onnx", "--pose", "m.onnx", "--detector", "hog:0"], "argument --detector: detector 'hog:0': hog:W "
                                                                    "needs a width of at least 64 pixels"),
    (["bench", "m.onnx", "--detector", "hgo"], "argument --detector: detector 'hgo' is neither"),
    (["video", "m.onnx", "--pose", "m.onnx", "--detector", "missing.onnx"], "detector file missing.onnx not found"),
])
def test_command_line_mistakes_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    """Options that contradict each other or do nothing, found before any model loads: exit 2 and one line in
    argparse's form (``goatpose CMD: error: ... (see goatpose CMD --help)``), as argparse's own mistakes."""
    monkeypatch.chdir(str(tmp_path))
    with open("m.onnx", "w") as f:
        f.write("not read: the options fail first")
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    prefix = "goatpose {}: error: ".format(argv[0])
    assert code == 2 and err.startswith(prefix) and message in err and err.count("\n") == 1, err
    assert err.endswith("(see goatpose {} --help)\n".format(argv[0])) and os.listdir(".") == ["m.onnx"]


def test_nan_heatmaps_never_become_keypoints():
    """A model that outputs NaN (broken weights) stops the pipeline in one line instead of writing NaN poses."""
    import numpy as np

    from goatpose_edge.detection.base import Detections
    from goatpose_edge.errors import GoatPoseError
    from goatpose_edge.pipeline import TopDownPoseEstimator
    from goatpose_edge.runtime.base import Runner
    from goatpose_edge.variants import VARIANTS

    class NanRunner(Runner):
        def __init__(self):
            super().__init__("nan.onnx")
            self.contract = VARIANTS["goatpose-bl"].contract

        def _activate(self):
            pass

        def _deactivate(self):
            pass

        def _infer(self, batch):
            return np.full((len(batch), 17, 64, 48), np.nan, np.float32)

    with NanRunner() as runner:
        estimator = TopDownPoseEstimator(None, runner)
        with pytest.raises(GoatPoseError, match="nan.onnx output NaN/Inf heatmaps"):
            estimator.estimate(np.zeros((100, 100, 3), np.uint8), Detections(np.array([[10., 10., 40., 80.]]),
                                                                             np.array([0.9])))
