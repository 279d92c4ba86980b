"""The README cannot rot: its Python blocks run, and its model table equals what the code measures."""

import os
import re
import shutil
import types

import pytest

from goatpose_edge.variants import VARIANTS
from tests.helpers import REPO_ROOT, measured_complexity

README = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()


def test_python_blocks_run(exports, tmp_path, monkeypatch, coco_persons, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) == 3
    shutil.copy(coco_persons[3][0], str(tmp_path / "person.jpg"))  # a real photo for the example to read
    monkeypatch.chdir(tmp_path)
    session = exports.onnx("goatpose-bl")  # the README's export, served from the session's (tests/export checks export_onnx)
    monkeypatch.setattr("goatpose_edge.export.export_onnx", lambda *a, **k: _copy_of(session, *a, **k))
    printed = []
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
        printed.append(capsys.readouterr().out.splitlines())
    assert printed[0][0] == "(256, 192) (64, 48)"
    assert printed[1] and printed[1][-1].endswith("(17, 3)")  # the HOG detector found someone
    streams = [line.split(" ", 3) for line in printed[2]]  # "stream index persons [ids]" per frame
    assert len(streams) == 40 and sorted(set(s[0] for s in streams)) == ["0", "1"]
    assert [int(s[1]) for s in streams if s[0] == "1"] == list(range(20))  # in order within each stream
    assert all(int(s[2]) >= 3 for s in streams)  # the walkers preset's figures, found by the dot model


def _copy_of(session, name, output, **options):
    """export_onnx as the README calls it, answered with a copy of the session's export of the same model (a full
    export costs 10 s)."""
    assert (name, options) == (session.contract.name, {}), "the README's export call changed"
    shutil.copy(session.path, output)
    return types.SimpleNamespace(path=output)


def _table_rows():
    rows = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in VARIANTS and len(cells) == 8:
            rows[cells[0]] = cells
    return rows


def test_model_table_lists_every_variant():
    assert sorted(_table_rows()) == sorted(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_model_table_row_is_measured(name):
    _, input_size, params, _, macs, gflops, _, dev = _table_rows()[name]
    c = measured_complexity(name)
    assert input_size == "{}x{}".format(*c.input_shape[2:])
    assert int(params.replace(",", "")) == c.params
    assert int(macs.replace(",", "")) == c.macs
    assert gflops == "{:.2f}".format(c.gflops)
    assert dev == "{:+.1f} %".format(c.gflops_deviation_pct)


def test_the_quick_start_runs(tmp_path):
    """The quick start's synthetic pipeline, as written: scene, dot model, goatpose video, score (the lines that need
    real weights or a video of one's own are the reader's)."""
    import shlex
    import subprocess
    import sys

    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", README, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    runnable = [line for line in lines if "walk" in line or "dot.onnx" in line]
    assert len(runnable) == 4 and len(block.splitlines()) <= 20
    outputs = []
    for line in runnable:
        words = shlex.split(line)
        command = [sys.executable, "-m", "goatpose_edge"] + words[1:] if words[0] == "goatpose" else \
            [sys.executable] + words[1:]
        if words[0] == "goatpose":
            command.append("--no-progress")
        run = subprocess.run(command, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=300)
        assert run.returncode == 0, (line, run.stderr)
        outputs.append(run.stdout)
    assert outputs[-1].startswith("scored against the scene's truth: recall 1.000")
    assert sorted(os.listdir(str(tmp_path))) == ["dot.onnx", "walk.avi", "walk.truth.jsonl", "walk_poses.jsonl",
                                                 "walk_poses.mp4"]
