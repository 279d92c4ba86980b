"""HRNet's residual blocks (official ``pose_hrnet``), with each listed conv optionally a LiteConv.

Module and parameter names are the official ones (``conv1``, ``bn1``, ..., ``downsample``), so the plain form loads
the official checkpoints strictly. BN eps/momentum are PyTorch's defaults (1e-5 / 0.1), as in the official code.
"""

from typing import Optional

from torch import nn

from goatpose_edge.models.liteconv import make_conv


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual: [N, C_in, H, W] -> [N, planes, H / stride, W / stride]."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 lite: bool = False):
        super().__init__()
        self.conv1 = make_conv(lite, inplanes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = make_conv(lite, planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual: [N, C_in, H, W] -> [N, 4 planes, H / stride, W / stride]."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 lite: bool = False):
        super().__init__()
        self.conv1 = make_conv(lite, inplanes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = make_conv(lite, planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = make_conv(lite, planes, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def make_downsample(lite: bool, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """The residual projection: 1x1 conv (LiteConv in GoatPose) + BN, keys ``downsample.0`` / ``downsample.1``."""
    return nn.Sequential(make_conv(lite, in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))
