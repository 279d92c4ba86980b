"""LiteConv against hand-computed small cases."""

import torch
from torch import nn

from goatpose_edge.models.liteconv import LiteConv, make_conv


def _identity_bn(bn):
    bn.eval()
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # so that BN(x) == x exactly


def test_structure_and_parameter_count():
    conv = LiteConv(8, 6, kernel_size=3, stride=2)
    primary, cheap = conv.primary_conv[0], conv.cheap_operation[0]
    assert (primary.in_channels, primary.out_channels, primary.kernel_size, primary.stride) == (8, 3, (3, 3), (2, 2))
    assert (cheap.in_channels, cheap.out_channels, cheap.groups, cheap.stride) == (3, 3, 3, (1, 1))
    # primary 8*3*9 + BN 2*3 + depthwise 3*9 + BN 2*3
    assert sum(p.numel() for p in conv.parameters()) == 216 + 6 + 27 + 6
    assert not conv.needs_slice


def test_hand_computed_output():
    """1x1 primary conv with weights [[1, 2]] and a depthwise 3x3 that sums the neighbourhood."""
    conv = LiteConv(2, 2, kernel_size=1).eval()
    with torch.no_grad():
        conv.primary_conv[0].weight.copy_(torch.tensor([1.0, 2.0]).view(1, 2, 1, 1))
        conv.cheap_operation[0].weight.fill_(1.0)
    _identity_bn(conv.primary_conv[1])
    _identity_bn(conv.cheap_operation[1])
    x = torch.zeros(1, 2, 3, 3)
    x[0, 0] = torch.tensor([[1.0, -1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    x[0, 1, 1, 1] = -3.0
    y = conv(x)
    # X1 = relu(x0 + 2 x1): only (0, 0) = 1 survives; (1, 1) = 2 - 6 < 0, (0, 1) = -1 < 0.
    x1 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # X2 = relu(3x3 box sum of X1 with zero padding): 1 at the four positions whose window holds (0, 0).
    x2 = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert y.shape == (1, 2, 3, 3)
    assert torch.equal(y[0, 0], x1) and torch.equal(y[0, 1], x2)


def test_odd_output_channels_are_sliced():
    conv = LiteConv(4, 5, kernel_size=3).eval()
    assert conv.needs_slice and conv.primary_conv[0].out_channels == 3
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 5)
    y = conv(x)
    assert y.shape == (2, 5, 6, 5)
    with torch.no_grad():
        x1 = conv.primary_conv(x)
        x2 = conv.cheap_operation(x1)
    assert torch.equal(y[:, :3], x1) and torch.equal(y[:, 3:], x2[:, :2])


def test_make_conv_plain_matches_hrnet_conv():
    conv = make_conv(False, 16, 32, 3, 2)
    assert isinstance(conv, nn.Conv2d) and conv.bias is None and conv.padding == (1, 1) and conv.stride == (2, 2)
    assert isinstance(make_conv(True, 16, 32, 1), LiteConv)
