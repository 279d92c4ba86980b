"""The HRNet body: official structure and names, official outputs (golden values), every variant's contract."""

import pytest
import torch

from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.models import VARIANTS, build_model

# Golden outputs of the official pose_hrnet (leoxiaobin/deep-high-resolution-net.pytorch, lib/models/pose_hrnet.py,
# W32/W48 configs) in float64, with the deterministic weights of ``fill_deterministic`` and the input of
# ``golden_input``: (sum, sum of |y|, y[0, 5, 7, 3], y[1, 16, 15, 11]). Any change of structure, fuse order, upsampling
# mode or BN eps changes them.
OFFICIAL_GOLDEN = {
    "hrnet-w32": (-1802.3952810884703, 71700.71998025377, -2.4585167002174746, 4.5296411437515784),
    "hrnet-w48": (-2344738235097.176, 89981449824187.03, 3025396339.102797, 3706428268.0432343),
}


def fill_deterministic(model):
    """Set every float tensor of the state dict from a closed formula (no RNG), in state-dict order."""
    with torch.no_grad():
        for i, (key, value) in enumerate(model.state_dict().items()):
            if not value.dtype.is_floating_point:
                continue
            t = torch.arange(value.numel(), dtype=torch.float64)
            if key.endswith("running_var"):
                new = 1.0 + 0.5 * torch.cos(0.7 * t + i) ** 2
            elif key.endswith("running_mean"):
                new = 0.1 * torch.sin(1.3 * t + i)
            elif key.endswith("bias"):
                new = 0.05 * torch.cos(0.9 * t + i)
            elif value.dim() == 1:  # BN weight
                new = 1.0 + 0.2 * torch.sin(0.5 * t + i)
            else:  # conv weight, He-like scale
                new = torch.sin(0.37 * t + i) * (2.0 / value[0].numel()) ** 0.5
            value.copy_(new.view_as(value))


def golden_input():
    return torch.sin(0.01 * torch.arange(2 * 3 * 128 * 96, dtype=torch.float64)).view(2, 3, 128, 96)


@pytest.mark.parametrize("name", sorted(OFFICIAL_GOLDEN))
def test_outputs_equal_the_official_implementation(name):
    model = build_model(name).double()
    fill_deterministic(model)
    with torch.no_grad():
        y = model(golden_input())
    assert y.shape == (2, 17, 32, 24)
    total, total_abs, a, b = OFFICIAL_GOLDEN[name]
    scale = total_abs / y.numel()
    assert y.sum().item() == pytest.approx(total, rel=1e-9, abs=1e-9 * scale * y.numel())
    assert y.abs().sum().item() == pytest.approx(total_abs, rel=1e-9)
    assert y[0, 5, 7, 3].item() == pytest.approx(a, rel=1e-9)
    assert y[1, 16, 15, 11].item() == pytest.approx(b, rel=1e-9)


# Keys and shapes of the official HRNet-W32 state dict (1754 entries with BN step counters).
OFFICIAL_W32_KEYS = {
    "conv1.weight": (64, 3, 3, 3),
    "bn2.running_var": (64,),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.3.conv3.weight": (256, 64, 1, 1),
    "transition1.0.0.weight": (32, 256, 3, 3),
    "transition1.1.0.0.weight": (64, 256, 3, 3),
    "transition2.2.0.0.weight": (128, 64, 3, 3),
    "transition3.3.0.0.weight": (256, 128, 3, 3),
    "stage2.0.branches.1.3.conv2.weight": (64, 64, 3, 3),
    "stage2.0.fuse_layers.0.1.0.weight": (32, 64, 1, 1),
    "stage2.0.fuse_layers.1.0.0.0.weight": (64, 32, 3, 3),
    "stage3.3.fuse_layers.2.0.0.0.weight": (32, 32, 3, 3),
    "stage3.3.fuse_layers.2.0.1.0.weight": (128, 32, 3, 3),
    "stage4.2.fuse_layers.0.3.0.weight": (32, 256, 1, 1),
    "stage4.2.fuse_layers.0.3.1.num_batches_tracked": (),
    "final_layer.weight": (17, 32, 1, 1),
    "final_layer.bias": (17,),
}


def test_state_dict_names_follow_the_official_ones():
    state = build_model("hrnet-w32").state_dict()
    assert len(state) == 1754
    for key, shape in OFFICIAL_W32_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    # The last stage-4 module outputs the high-resolution branch only.
    assert not any(k.startswith("stage4.2.fuse_layers.1.") for k in state)
    assert any(k.startswith("stage4.1.fuse_layers.3.") for k in state)


def test_goatpose_replaces_exactly_the_listed_convs():
    model = build_model("goatpose-bl")
    state = model.state_dict()
    assert tuple(state["conv1.weight"].shape) == (64, 3, 3, 3)  # stem conv1 stays plain
    assert tuple(state["conv2.primary_conv.0.weight"].shape) == (32, 64, 3, 3)
    assert tuple(state["conv2.cheap_operation.0.weight"].shape) == (32, 1, 3, 3)
    assert tuple(state["layer1.0.downsample.0.primary_conv.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(state["transition3.3.0.0.primary_conv.0.weight"].shape) == (128, 128, 3, 3)
    assert tuple(state["stage4.2.branches.3.1.conv2.primary_conv.0.weight"].shape) == (128, 256, 3, 3)
    assert tuple(state["stage3.0.fuse_layers.0.2.0.weight"].shape) == (32, 128, 1, 1)  # fuse convs plain
    assert tuple(state["stage2.0.branches.1.4.bn.weight"].shape) == (64,)  # NAM after the 4th block
    assert tuple(state["final_layer.weight"].shape) == (17, 32, 1, 1)
    lite = sum(1 for k in state if k.endswith("primary_conv.0.weight"))
    # stem conv2 + 4 Bottlenecks x 3 + downsample + transitions (1 + 1 + 1 + 1) + BasicBlocks 2 x 4 x 26 branches
    assert lite == 1 + 12 + 1 + 4 + 2 * 4 * 26


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_maps_an_image_batch_to_quarter_resolution_heatmaps(name):
    model = build_model(name)
    torch.manual_seed(0)
    with torch.no_grad():
        y = model(torch.randn(2, 3, 128, 96))
    assert y.shape == (2, 17, 32, 24) and torch.isfinite(y).all()
    assert not model.training
    contract = model.contract
    assert isinstance(contract, ModelContract) and contract.name == name
    assert contract.input_size == VARIANTS[name].input_size and contract.heatmap_size == (
        contract.input_size[0] // 4, contract.input_size[1] // 4)
