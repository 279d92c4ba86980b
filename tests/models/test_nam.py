"""NAM against hand-computed values, its deploy form, and the L1 sparsity penalty."""

import math

import pytest
import torch

from goatpose_edge.models import build_model, nam_l1_penalty, to_deploy
from goatpose_edge.models.nam import NAM, NAMDeploy


def _nam_with(gamma, beta, mean, var):
    nam = NAM(len(gamma)).eval()
    with torch.no_grad():
        nam.bn.weight.copy_(torch.tensor(gamma))
        nam.bn.bias.copy_(torch.tensor(beta))
        nam.bn.running_mean.copy_(torch.tensor(mean))
        nam.bn.running_var.copy_(torch.tensor(var))
    return nam


def test_channel_weights_are_normalised_absolute_gammas():
    nam = _nam_with([1.0, -3.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0])
    assert nam.channel_weights().tolist() == [0.25, 0.75]
    assert not nam.channel_weights().requires_grad  # constant, as in the NAM reference code


def test_hand_computed_two_channel_case():
    eps = 1e-5
    nam = _nam_with([1.0, -3.0], [0.5, 0.0], [1.0, 0.0], [4.0 - eps, 1.0 - eps])
    x = torch.tensor([3.0, 2.0]).view(1, 2, 1, 1)
    # channel 0: BN = (3 - 1) / 2 * 1 + 0.5 = 1.5, w = 0.25 -> y = sigmoid(0.375) * 3
    # channel 1: BN = 2 * -3 = -6, w = 0.75 -> y = sigmoid(-4.5) * 2
    expected = [3.0 / (1.0 + math.exp(-0.375)), 2.0 / (1.0 + math.exp(4.5))]
    y = nam(x).flatten().tolist()
    assert y == pytest.approx(expected, rel=1e-6)


def test_deploy_form_matches_and_holds_only_constants():
    torch.manual_seed(1)
    nam = _nam_with(torch.randn(8).tolist(), torch.randn(8).tolist(), torch.randn(8).tolist(),
                    (torch.rand(8) + 0.5).tolist())
    folded = nam.deploy_form()
    assert isinstance(folded, NAMDeploy) and not list(folded.parameters())
    x = torch.randn(3, 8, 5, 4)
    assert torch.allclose(folded(x), nam(x), atol=1e-6, rtol=1e-5)


def test_to_deploy_replaces_all_26_nams_and_keeps_the_function():
    torch.manual_seed(2)
    model = build_model("nam-hrnet-w32")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, NAM):
                module.bn.weight.uniform_(-2, 2)
                module.bn.bias.uniform_(-1, 1)
                module.bn.running_mean.uniform_(-1, 1)
                module.bn.running_var.uniform_(0.5, 2)
    assert sum(isinstance(m, NAM) for m in model.modules()) == 26
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        deployed = to_deploy(model)
        folded = deployed(x)
    assert sum(isinstance(m, NAMDeploy) for m in deployed.modules()) == 26
    assert not any(isinstance(m, NAM) for m in deployed.modules())
    scale = reference.abs().max().item()
    assert (folded - reference).abs().max().item() <= 1e-5 * scale


def test_l1_penalty_sums_nam_gammas_only():
    model = build_model("goatpose-bl")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, NAM):
                module.bn.weight.fill_(-0.5)
    channels = (32 + 64) + 4 * (32 + 64 + 128) + 3 * (32 + 64 + 128 + 256)
    assert nam_l1_penalty(model, 1e-4).item() == pytest.approx(1e-4 * 0.5 * channels)
    assert nam_l1_penalty(build_model("hrnet-w32")).item() == 0.0


def test_l1_penalty_has_a_gradient():
    nam = NAM(4)
    nam_l1_penalty(nam, 1.0).backward()
    assert nam.bn.weight.grad.tolist() == [1.0, 1.0, 1.0, 1.0]
