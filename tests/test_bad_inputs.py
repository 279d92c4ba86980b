"""Every command, given inputs that are empty files or text files under the right names, answers in one line with a
non-zero exit: never a traceback, never "internal error" (the input is at fault). In process, for speed (native
crashes on odd frames: tests/detection/test_odd_frames.py, in subprocesses). Generated
from tests/test_io_guard.py's MINIMAL command lines, so a new command inherits it."""

import os

import pytest

from goatpose_edge.cli import main
from tests.test_io_guard import FOLDERS, MINIMAL

WITH_INPUTS = sorted(c for c, argv in MINIMAL.items() if any("{" in a and "fresh" not in a for a in argv))


def _materialise(root, argv, content):
    out = []
    for arg in argv:
        while "{" in arg:
            start, end = arg.index("{"), arg.index("}")
            name = arg[start + 1:end]
            path = os.path.join(root, name)
            if name in FOLDERS:
                os.makedirs(path, exist_ok=True)
            elif name != "fresh.pth":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(content)
            arg = arg[:start] + path + arg[end + 1:]
        out.append(arg)
    if any("e.engine" in a for a in argv):
        with open(os.path.join(root, "e.json"), "wb") as f:
            f.write(content)
    return out


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
