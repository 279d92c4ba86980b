"""python -m goatpose_edge.synthetic: scene, dotpose and score, and one line + exit 1 on bad input."""

import json
import os
import subprocess
import sys

import pytest

from goatpose_edge.artefact.onnx_meta import read_contract
from goatpose_edge.synthetic import read_truth
from goatpose_edge.synthetic.__main__ import main
from tests.synthetic.conftest import read_video


def test_scene_dotpose_score(tmp_path, capsys):
    video, truth = str(tmp_path / "walk.avi"), str(tmp_path / "walk.truth.jsonl")
    assert main(["scene", video, "--truth", truth, "--preset", "walkers", "--frames", "12", "--jitter", "2",
                 "--width", "320", "--height", "240"]) == 0
    assert "12 frames, 4 figures" in capsys.readouterr().out
    frames = read_video(video)
    assert len(frames) == 12 and frames[0].shape == (240, 320, 3)
    assert len(read_truth(truth)) == 12
    model = str(tmp_path / "dot.onnx")
    assert main(["dotpose", model, "--input-size", "128x96"]) == 0
    assert read_contract(model).input_size == (128, 96)
    capsys.readouterr()
    run = tmp_path / "run.jsonl"  # the truth itself as a perfect run, in the video command's format
    with open(truth) as f, open(str(run), "w") as out:
        for line in f:
            record = json.loads(line)
            persons = [{"id": t["id"], "keypoints": t["keypoints"], "box": t["box"], "score": 1.0}
                       for t in record["figures"]]
            out.write(json.dumps({"frame": record["frame"], "time": record["time"], "persons": persons}) + "\n")
    assert main(["score", str(run), truth]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["rms_px"] == 0.0 and score["recall"] == 1.0 and score["id_switches"] == 0
    assert score["frames"] == 12


def test_the_truth_defaults_beside_the_video(tmp_path, capsys):
    video = str(tmp_path / "one.mp4")
    assert main(["scene", video, "--preset", "single", "--frames", "3"]) == 0
    assert sorted(os.listdir(str(tmp_path))) == ["one.mp4", "one.truth.jsonl"]


@pytest.mark.parametrize("argv, message", [
    (["scene", "x.avi", "--truth", "x.avi"], "both be written"),
    (["scene", "x.mkv"], "use a .avi or .mp4 file"),
    (["scene", "x.avi", "--frames", "0"], "at least 1 frame"),
    (["scene", "x.avi", "--preset", "dance"], "invalid choice"),
    (["dotpose", "x.onnx", "--input-size", "250x192"], "divisible by the heatmap stride"),
    (["dotpose", "x.onnx", "--input-size", "big"], "expected HxW"),
    (["score", "missing.jsonl", "missing.truth.jsonl"], "file not found"),
    ([], "choose a command"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, argv, message, capsys, monkeypatch):
    if argv:  # through main in this process, in the same folder
        monkeypatch.chdir(str(tmp_path))
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        stderr = capsys.readouterr().err
    else:  # python -m goatpose_edge.synthetic as a process: the module's entry point
        result = subprocess.run([sys.executable, "-m", "goatpose_edge.synthetic"] + argv, cwd=str(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        code, stderr = result.returncode, result.stderr
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in stderr
    assert os.listdir(str(tmp_path)) == []  # nothing half-written


def test_the_package_docstring_example_runs(tmp_path, monkeypatch):
    import textwrap

    import goatpose_edge.synthetic as synthetic

    lines = synthetic.__doc__.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    end = next(i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith("    "))
    block = "\n".join(lines[start:end])  # the first code block, up to the next paragraph
    assert "render_scene" in block and "score_predictions" in block
    monkeypatch.chdir(str(tmp_path))
    namespace = {}
    exec(compile(textwrap.dedent(block).replace("frames=60", "frames=8"), "synthetic.__doc__", "exec"), namespace)
    score = namespace["score"]
    assert score.frames == 8 and score.recall == 1.0
    assert 2.0 < score.rms_px < 4.0  # jitter 2 px per axis: ~2.9 px RMS (2 sqrt(2) and the decoding)
    assert os.path.isfile("dotpose.onnx")
