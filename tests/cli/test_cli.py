"""The ``goatpose`` command: real exit codes and one-line errors."""

import json
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
