"""Odd and hostile checkpoints: every one is refused in one line that says what the file is and what to do, through
the library and through ``goatpose export`` / ``verify`` (exit 1, never an internal error)."""

import os

import pytest
import torch

from goatpose_edge.cli import main
from goatpose_edge.errors import CheckpointError
from goatpose_edge.models import build_model, load_checkpoint
from goatpose_edge.models.checkpoint import FORMAT


@pytest.fixture(scope="module")
def bl_state():
    """GoatPose-BL's state dict (random init): a plain state dict, which records no variant."""
    return build_model("goatpose-bl").state_dict()


def _save(obj, tmp_path, name="ckpt.pth", **kwargs):
    path = str(tmp_path / name)
    torch.save(obj, path, **kwargs)
    return path


def _cli_error(capsys, argv, code=1):
    """Run the CLI in-process: its exit status and its one ``goatpose: error:`` line."""
    status = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("goatpose: ")]
    assert status == code, err
    assert len(lines) == 1 and lines[0].startswith("goatpose: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    return lines[0][len("goatpose: error: "):]


def _export(path, tmp_path):
    return ["export", "goatpose-bl", "--weights", path, "-o", str(tmp_path / "x.onnx")]


class RunsCommand:
    """A pickle that asks the unpickler to call ``os.system("true")`` (harmless even when run)."""

    def __reduce__(self):
        return (os.system, ("true",))


class MakesFolder:
    """A pickle whose call leaves a trace (a folder), to prove the loader never makes it."""

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        return (os.makedirs, (self.folder,))


@pytest.mark.parametrize("content", [b"hello world, this is text\n", b"a: 1\nb: 2\n", b'{"state_dict": {}}',
                                     b"not a checkpoint at all"])
def test_text_file_is_not_a_checkpoint(content, tmp_path, capsys):
    path = tmp_path / "text.pth"
    path.write_bytes(content)  # b"h..." made torch's unpickler raise KeyError: an internal error before
    message = _cli_error(capsys, _export(str(path), tmp_path))
    assert message == ("cannot read checkpoint {}: not a PyTorch checkpoint (a text file); pass a .pth/.pt file "
                       "written by torch.save".format(path))
    assert not (tmp_path / "x.onnx").exists()


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    import pickle

    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": [1.0, 2.0]}, protocol=4))
    with pytest.raises(CheckpointError, match=r"not a PyTorch checkpoint \(a plain pickle, not one torch.save"):
        load_checkpoint(str(path), "goatpose-bl")


def test_pickled_code_is_refused_naming_the_flag(bl_state, tmp_path, capsys):
    path = _save({"state_dict": bl_state, "hook": RunsCommand()}, tmp_path)
    message = _cli_error(capsys, _export(path, tmp_path))
    assert message.startswith("{} holds Python objects besides weights (".format(path))
    assert "system), which can run code when loaded; refusing to unpickle it" in message
    assert "--trust-checkpoint" in message and "truncated" not in message and "not a PyTorch" not in message
    # Trusted, it loads (and runs ``true``): the weights are used.
    model = load_checkpoint(path, "goatpose-bl", trusted=True)
    assert torch.equal(model.state_dict()["final_layer.weight"], bl_state["final_layer.weight"])


def test_pickled_code_is_never_run_untrusted(tmp_path):
    trace = str(tmp_path / "ran")
    path = _save({"a": torch.zeros(1), "x": MakesFolder(trace)}, tmp_path)
    with pytest.raises(CheckpointError, match=r"holds Python objects besides weights \(os.makedirs\).*"
                                              r"--trust-checkpoint"):
        load_checkpoint(path, "goatpose-bl")
    assert not os.path.exists(trace)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_checkpoint(legacy, tmp_path, capsys):
    path = _save({"conv1.weight": torch.randn(64, 3, 3, 3)}, tmp_path, _use_new_zipfile_serialization=not legacy)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    message = _cli_error(capsys, _export(path, tmp_path))
    assert message.startswith("cannot read checkpoint {}: truncated or not a PyTorch checkpoint (".format(path))
    assert message.endswith("); copy or download it again")
    assert "Python objects" not in message  # a cut legacy file names a torch global that does not exist
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(path, "goatpose-bl", trusted=True)


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert _cli_error(capsys, _export(str(path), tmp_path)) == (
        "cannot read checkpoint {}: the file is empty (0 bytes); copy or download it again".format(path))


def test_state_dict_that_does_not_fit(bl_state, tmp_path, capsys):
    state = dict(bl_state)
    del state["conv1.weight"], state["bn1.bias"]
    state["extra.weight"] = torch.zeros(3)
    state["final_layer.bias"] = torch.zeros(16)  # 17 joints in the model
    message = _cli_error(capsys, _export(_save(state, tmp_path), tmp_path))
    assert "does not fit goatpose-bl: 2 missing, 1 unexpected, 1 shape-mismatched keys" in message
    assert "missing: conv1.weight, bn1.bias" in message and "unexpected: extra.weight" in message
    assert "final_layer.bias [16] vs model [17]" in message


def test_unnamed_checkpoint_says_which_argument_names_the_model(bl_state, tmp_path, capsys):
    path = _save(bl_state, tmp_path, "plain.pth")
    message = _cli_error(capsys, ["verify", path, path])
    assert message.startswith("{} does not record which model it is; pass the model name (its weights fit "
                              "goatpose-bl / goatpose-bh): --model NAME for goatpose verify and pose, the MODEL "
                              "argument of goatpose export;".format(path))
    assert "bench, eval and video take no model name" in message
    from goatpose_edge.runtime import load_runner

    # What --model passes on (verify's and pose's run give it to the runner as model_name) makes the same file load.
    assert load_runner(path, model_name="goatpose-bl").contract.name == "goatpose-bl"


def test_recorded_variant_unknown_here(bl_state, tmp_path):
    path = _save({"format": FORMAT, "variant": "goatpose-zz", "state_dict": bl_state}, tmp_path)
    with pytest.raises(CheckpointError, match=r"records model 'goatpose-zz', which this goatpose-edge does not "
                                              r"know .*--model NAME"):
        load_checkpoint(path)
    assert load_checkpoint(path, "goatpose-bl").variant.name == "goatpose-bl"


def test_self_nested_and_odd_keyed_dicts_are_no_state_dict(tmp_path):
    nested = {"epoch": 1}
    nested["model"] = nested  # a pickle can hold a dict inside itself
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        load_checkpoint(_save(nested, tmp_path, "nested.pth"), "goatpose-bl")
    with pytest.raises(CheckpointError, match=r"holds no state_dict \(found \['1', 'a'\]\)"):
        load_checkpoint(_save({1: torch.zeros(1), "a": torch.zeros(1)}, tmp_path, "keys.pth"), "goatpose-bl")
