"""NAM channel attention (Liu et al. 2021, "NAM: Normalization-based attention module"), channel sub-module only.

    y = sigmoid(BN(x) * w) * x,    w_c = |gamma_c| / sum_j |gamma_j|,    gamma = that BN's weight

As in the NAM reference code, ``w`` is computed from the BN weight's value without a gradient path (``.detach()``);
gamma is still trained through BN(x) and steered by the L1 sparsity penalty (paper eq. 5, ``nam_l1_penalty``).

At inference BN is a per-channel affine map and ``w`` a constant, so the whole gate folds to
``y = x * sigmoid(a * x + b)``: ``NAM.deploy_form()`` returns that as ``NAMDeploy``, and an exported graph then holds
two constant vectors instead of recomputing |gamma| / sum |gamma| on every call.
"""

import torch
from torch import nn


class NAM(nn.Module):
    """Normalization-based channel attention: [N, C, H, W] -> [N, C, H, W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def channel_weights(self):
        """w [C]: |gamma| normalised to sum to 1, as a constant."""
        gamma = self.bn.weight.detach().abs()
        return gamma / gamma.sum()

    def forward(self, x):
        w = self.channel_weights().view(1, -1, 1, 1)  # [1, C, 1, 1]
        return torch.sigmoid(self.bn(x) * w) * x

    def deploy_form(self) -> "NAMDeploy":
        """The inference-only equivalent with BN and w folded into one scale and shift (uses running stats)."""
        bn = self.bn
        with torch.no_grad():
            inv_std = torch.rsqrt(bn.running_var + bn.eps)
            w = self.channel_weights()
            scale = bn.weight * inv_std * w
            shift = (bn.bias - bn.running_mean * bn.weight * inv_std) * w
        return NAMDeploy(scale, shift)


class NAMDeploy(nn.Module):
    """Folded NAM: y = x * sigmoid(scale * x + shift), [N, C, H, W] -> [N, C, H, W]."""

    def __init__(self, scale, shift):
        super().__init__()
        self.register_buffer("scale", scale.detach().clone().view(1, -1, 1, 1))  # [1, C, 1, 1]
        self.register_buffer("shift", shift.detach().clone().view(1, -1, 1, 1))  # [1, C, 1, 1]

    def forward(self, x):
        return x * torch.sigmoid(x * self.scale + self.shift)


def nam_l1_penalty(model: nn.Module, coefficient: float = 1e-4):
    """Paper eq. 5: ``coefficient * sum |gamma|`` over the BNs of every NAM in ``model`` (0 when it has none)."""
    total = None
    for module in model.modules():
        if isinstance(module, NAM):
            term = module.bn.weight.abs().sum()
            total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return coefficient * total
