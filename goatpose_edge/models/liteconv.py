"""LiteConv: the paper's Ghost-style replacement for a plain convolution (MODEL.md, "LiteConv").

For a conv C_in -> C_out with kernel k and stride s:

    X1 = ReLU(BN(conv_k,s(X)))          C_in -> m = ceil(C_out / 2), the "intrinsic" maps
    X2 = ReLU(BN(depthwise_3x3(X1)))    m -> m, the "cheap operation" (stride 1)
    Y  = concat[X1, X2][:, :C_out]

The BN (and ReLU, residual) that followed the replaced conv in its host block stays where it was, so a LiteConv is a
drop-in for ``nn.Conv2d(C_in, C_out, k, s, k // 2, bias=False)``. Names follow timm's ``GhostModule``
(``primary_conv``, ``cheap_operation``) so that weights copied from HRNet land in ``primary_conv.0``.
"""

import torch
from torch import nn


class LiteConv(nn.Module):
    """Ghost-style convolution: [N, C_in, H, W] -> [N, C_out, H / stride, W / stride]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        intrinsic = (out_channels + 1) // 2
        self.out_channels = out_channels
        # Slicing only when C_out is odd: a no-op Slice in the graph costs real time on every backend.
        self.needs_slice = 2 * intrinsic != out_channels
        self.primary_conv = nn.Sequential(
            nn.Conv2d(in_channels, intrinsic, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(intrinsic),
            nn.ReLU(inplace=True),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(intrinsic, intrinsic, 3, 1, 1, groups=intrinsic, bias=False),
            nn.BatchNorm2d(intrinsic),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        x1 = self.primary_conv(x)  # [N, m, H', W']
        x2 = self.cheap_operation(x1)  # [N, m, H', W']
        out = torch.cat([x1, x2], dim=1)  # [N, 2m, H', W']
        return out[:, :self.out_channels] if self.needs_slice else out


def make_conv(lite: bool, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Module:
    """The conv a block uses: plain (HRNet's, no bias, 'same' padding) or its LiteConv replacement."""
    if lite:
        return LiteConv(in_channels, out_channels, kernel_size, stride)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
