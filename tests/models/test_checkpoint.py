"""One loader for official HRNet, mmpose 0.x/1.x, DataParallel and goatpose-edge checkpoints; strict, safe, clear."""

import collections
import os
import pickle

import pytest
import torch

from goatpose_edge.errors import CheckpointError
from goatpose_edge.models import build_model, load_checkpoint, save_checkpoint
from goatpose_edge.models.nam import NAMDeploy


@pytest.fixture(scope="module")
def hrnet_w32_state():
    """An official-format HRNet-W32 state dict with random values (BN statistics included)."""
    torch.manual_seed(3)
    state = build_model("hrnet-w32").state_dict()
    for key, value in state.items():
        if value.dtype.is_floating_point:
            value.copy_(torch.rand_like(value) + 0.5 if key.endswith("running_var") else torch.randn_like(value) * 0.05)
    return collections.OrderedDict(state)


@pytest.fixture(scope="module")
def probe():
    torch.manual_seed(4)
    return torch.randn(1, 3, 64, 64)


def _output(model, x):
    with torch.no_grad():
        return model(x)


def _reference(state, x):
    model = build_model("hrnet-w32")
    model.load_state_dict(state)
    return _output(model, x)


@pytest.fixture(scope="module")
def reference(hrnet_w32_state, probe):
    """What HRNet-W32 with the official state computes on the probe (the same for every format: computed once)."""
    return _reference(hrnet_w32_state, probe)


def _save(obj, tmp_path, name="ckpt.pth"):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def _mmpose(state, head_prefix):
    return {("backbone." + k if not k.startswith("final_layer.") else head_prefix + k): v for k, v in state.items()}


FORMATS = {
    "official": lambda s: s,
    "official-pre-0.4.1": lambda s: collections.OrderedDict(
        (k, v) for k, v in s.items() if not k.endswith("num_batches_tracked")),
    "mmpose-0.x": lambda s: {"meta": {"mmpose_version": "0.29.0", "epoch": 210}, "state_dict": _mmpose(s, "keypoint_head.")},
    "mmpose-1.x": lambda s: {"meta": {"mmpose_version": "1.3.1"}, "state_dict": _mmpose(s, "head.")},
    "dataparallel": lambda s: {"module." + k: v for k, v in s.items()},
    "model-wrapper-ddp-mmpose": lambda s: {"model": {"module." + k: v for k, v in _mmpose(s, "head.").items()}},
    "net-wrapper": lambda s: {"net": s, "epoch": 3},
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_loads_strictly_and_computes_the_same(fmt, hrnet_w32_state, probe, reference, tmp_path):
    path = _save(FORMATS[fmt](hrnet_w32_state), tmp_path)
    model = load_checkpoint(path, "hrnet-w32")
    assert torch.equal(_output(model, probe), reference)
    assert not model.training


def test_own_format_records_the_variant_and_round_trips(tmp_path):
    torch.manual_seed(5)
    model = build_model("goatpose-bl")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = str(tmp_path / "goatpose.pth")
    save_checkpoint(model, path, epoch=7)
    loaded = load_checkpoint(path)  # no name: it comes from the checkpoint
    assert loaded.variant.name == "goatpose-bl"
    assert loaded.contract == model.contract
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(_output(loaded, x), _output(model, x))
    assert os.listdir(str(tmp_path)) == ["goatpose.pth"]  # nothing temporary left behind
    # Same weights at the other input size, and the deploy form on request.
    high = load_checkpoint(path, "goatpose-bh", deploy=True)
    assert high.contract.input_size == (384, 288)
    assert sum(isinstance(m, NAMDeploy) for m in high.modules()) == 26


def test_other_width_is_refused_with_one_line_naming_the_fit(tmp_path):
    torch.manual_seed(6)
    path = _save(build_model("hrnet-w48").state_dict(), tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, "hrnet-w32")
    message = str(info.value)
    assert "\n" not in message
    assert "does not fit hrnet-w32: 0 missing, 0 unexpected, 1386 shape-mismatched keys" in message
    assert "transition1.0.0.weight [48, 256, 3, 3] vs model [32, 256, 3, 3]" in message
    assert message.endswith("its weights fit hrnet-w48 / hrnet-w48-384x288")


def test_other_architecture_counts_missing_and_unexpected(hrnet_w32_state, tmp_path):
    path = _save(hrnet_w32_state, tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, "goatpose-bl")
    message = str(info.value)
    assert "does not fit goatpose-bl:" in message and "missing: " in message and "unexpected: " in message
    assert message.endswith("its weights fit hrnet-w32 / hrnet-w32-384x288")


def test_foreign_checkpoint_without_a_name_asks_for_one(hrnet_w32_state, tmp_path):
    path = _save(hrnet_w32_state, tmp_path)
    with pytest.raises(CheckpointError, match=r"does not record which model it is; pass the model name "
                                              r"\(its weights fit hrnet-w32 / hrnet-w32-384x288\)"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pth"):
        load_checkpoint(str(tmp_path / "nope.pth"), "hrnet-w32")


@pytest.mark.parametrize("content, message", [
    (b"", r"the file is empty \(0 bytes\)"),
    (b"not a checkpoint at all", r"not a PyTorch checkpoint \(a text file\)"),
    (b"PK\x03\x04truncated zip", "truncated or not a PyTorch checkpoint")])
def test_corrupt_files(content, message, tmp_path):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.pth: " + message):
        load_checkpoint(str(path), "hrnet-w32")


def test_truncated_checkpoint(hrnet_w32_state, tmp_path):
    path = _save(hrnet_w32_state, tmp_path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch checkpoint"):
        load_checkpoint(path, "hrnet-w32")


class Payload:
    """Stands for anything a malicious pickle could name; must never be constructed by the loader."""

    constructed = 0

    def __reduce__(self):
        return (Payload._construct, ())

    @staticmethod
    def _construct():
        Payload.constructed += 1
        return "ran"


def test_pickled_objects_are_refused_unless_trusted(hrnet_w32_state, tmp_path):
    path = _save({"state_dict": hrnet_w32_state, "extra": Payload()}, tmp_path)
    with pytest.raises(CheckpointError, match="holds Python objects besides weights.*trusted=True"):
        load_checkpoint(path, "hrnet-w32")
    assert Payload.constructed == 0
    load_checkpoint(path, "hrnet-w32", trusted=True)
    assert Payload.constructed == 1


def test_no_state_dict_inside(tmp_path):
    path = _save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path)
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        load_checkpoint(path, "hrnet-w32")


def test_pickle_error_type_is_not_leaked(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError):
        load_checkpoint(str(path), "hrnet-w32")
