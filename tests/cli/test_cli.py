"""The ``goatpose`` command: real exit codes and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from goatpose_edge.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "goatpose_edge"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)


def test_info_prints_the_table_with_paper_figures(capsys):
    assert main(["info", "hrnet-w32", "goatpose-bl"]) == 0
    out = capsys.readouterr().out
    assert "| hrnet-w32 | 1x3x256x192 | 1x17x64x48 | 28,536,113 (28.54 M) | 29.00 M | -1.6 % | 7,645,003,776 | 7.12 |" in out
    assert "| goatpose-bl | 1x3x256x192 | 1x17x64x48 | 15,546,753 (15.55 M) | 15.51 M | +0.2 % |" in out
    assert "| 3.82 | 3.48 | +9.8 % |" in out


def test_info_json(capsys):
    assert main(["info", "goatpose-xl", "--json"]) == 0
    record, = json.loads(capsys.readouterr().out)
    assert record["model"] == "goatpose-xl" and record["output_shape"] == [1, 17, 64, 48]
    assert record["params"] == 34536393


@pytest.mark.parametrize("args, message", [
    (["info", "hrnet-w64"], "goatpose: error: unknown model 'hrnet-w64'; known models: goatpose-bl, "),
    (["info"], "goatpose: error: name a model or pass --all"),
])
def test_bad_input_gives_one_line_and_exit_1(args, message):
    result = run_cli(*args)
    assert result.returncode == 1
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_console_script_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("goatpose-edge ")


def disk_full_after(monkeypatch, folder, budget: int = 4096):
    """Files opened for writing in ``folder`` as on a disk with ``budget`` bytes left: the write past it raises
    OSError(ENOSPC), as a full disk does (torch's own writer would turn it into a RuntimeError from
    inline_container.cc)."""
    import builtins
    import errno

    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f, self.left = f, budget

        def write(self, data):
            if len(data) > self.left:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def opened(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        in_folder = isinstance(file, str) and os.path.dirname(os.path.abspath(file)) == str(folder)
        return FullFile(f) if in_folder and ("w" in mode or "a" in mode) else f

    monkeypatch.setattr(builtins, "open", opened)


def test_init_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    disk_full_after(monkeypatch, tmp_path)
    out = str(tmp_path / "bl.pth")
    code = main(["init", "goatpose-bl", "-o", out])
    err = capsys.readouterr().err
    assert code == 1 and err == "goatpose: error: no space left on device writing {}\n".format(out)
    assert os.listdir(str(tmp_path)) == []  # no checkpoint, no hidden temporary file


def test_every_command_the_pickle_refusal_names_accepts_trust_checkpoint():
    """The refusal of a pickled checkpoint tells the user a flag: every command it names for it has the flag."""
    import re

    from goatpose_edge.cli import build_parser
    from goatpose_edge.models.checkpoint import _load_error

    message = str(_load_error("w.pth", b"PK\x03\x04", RuntimeError("Unsupported global: GLOBAL os.system")))
    named = re.search(r"pass --trust-checkpoint \(([^;]*);", message).group(1).split(", ")
    assert named == ["export", "verify", "eval", "bench", "train"]
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in named:
        assert any("--trust-checkpoint" in a.option_strings for a in subcommands[command]._actions), command


def test_help_groups_host_and_device_commands_with_an_example_each():
    import re
    import shlex

    from goatpose_edge.artefact.sidecar import ENGINE_SUFFIXES
    from goatpose_edge.cli import COMMANDS, EPILOG, build_parser
    from goatpose_edge.cli.common import CHECKPOINT_SUFFIXES, JSONL_SUFFIXES
    from goatpose_edge.video.outputs import FOURCC

    result = run_cli("--help")
    assert result.returncode == 0 and EPILOG in result.stdout  # as written: RawDescriptionHelpFormatter
    host, device = EPILOG.split("\n\n")[:2]
    examples = {}
    for group, text in (("host", host), ("device", device)):
        assert text.startswith(group + " commands (")
        for line in text.splitlines()[1:]:
            command = re.split(r"\s{2,}", line.strip())[0]
            if command.startswith("goatpose "):
                examples[shlex.split(command)[1]] = (group, shlex.split(command)[1:])
    assert {name: group for name, (group, _) in examples.items()} == {
        "info": "host", "init": "host", "export": "host", "train": "host", "quantize": "host", "lint": "host",
        "verify": "host", "platform": "device", "env": "device", "build": "device", "pose": "device",
        "video": "device", "listen": "device", "dashboard": "device", "bench": "device", "eval": "device"}
    assert sorted(examples) == sorted(command.NAME for command in COMMANDS)
    parser = build_parser()
    for name, (_, argv) in examples.items():  # every example is a command line its command takes
        assert parser.parse_args(argv).command == name
    for suffixes in (ENGINE_SUFFIXES, CHECKPOINT_SUFFIXES, JSONL_SUFFIXES, tuple(FOURCC)):  # the -o endings, all of them
        assert all(suffix in EPILOG for suffix in suffixes), suffixes


def test_help_texts_say_what_the_commands_take():
    pose = run_cli("pose", "--help").stdout
    assert ".engine, .onnx or .pth" in pose and ".jsonl or .ndjson" in pose
    build = " ".join(run_cli("build", "--help").stdout.split())
    assert "goatpose still builds it: not a dry run" in build and ".engine, .plan or .trt" in build
    bench = " ".join(run_cli("bench", "--help").stdout.split())
    assert "applies to .onnx artefacts only" in bench and "the median is reported with the min..max (3)" in bench
