"""One HRNet body (official ``pose_hrnet``) parametrised by conv block (plain | LiteConv) and attention (none | NAM).

    HRNet-W32/W48     lite=False, nam=False   the official network; loads its checkpoints with strict=True
    NAM-HRNet-W32     lite=False, nam=True
    GoatPose-B/X      lite=True,  nam=True    width 32 / 48

Structure, module names and forward order are the official ones (leoxiaobin/deep-high-resolution-net.pytorch,
``lib/models/pose_hrnet.py``): stem of two 3x3 stride-2 convs, stage 1 of 4 Bottlenecks, stages 2/3/4 with 1/4/3
modules of 2/3/4 branches (4 BasicBlocks each), fuse layers (1x1 conv + BN + nearest upsample up, 3x3 stride-2
chains down), the last module producing the highest-resolution branch only, and a 1x1 conv to K heatmaps at 1/4 of
the input resolution. GoatPose changes (MODEL.md): LiteConv for stem conv2, every stage-1 Bottleneck conv and its
downsample, every transition conv and both BasicBlock convs; one NAM closes every branch of every HR module (26).
Stem conv1, fuse convs and the final layer stay plain.
"""

from typing import List, Optional

from torch import nn

from goatpose_edge.models.liteconv import make_conv
from goatpose_edge.models.nam import NAM
from goatpose_edge.models.resnet_blocks import BasicBlock, Bottleneck, make_downsample

STAGE_MODULES = (1, 4, 3)  # HR modules in stages 2, 3, 4
BLOCKS_PER_BRANCH = 4


class HighResolutionModule(nn.Module):
    """Parallel branches then all-to-all fusion: list of K maps [N, C_i, H / 2^i, W / 2^i] -> list of K' maps."""

    def __init__(self, channels: List[int], lite: bool, nam: bool, multi_scale_output: bool = True):
        super().__init__()
        self.branches = nn.ModuleList([self._make_branch(c, lite, nam) for c in channels])
        self.fuse_layers = self._make_fuse_layers(list(channels), multi_scale_output)
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _make_branch(channels: int, lite: bool, nam: bool) -> nn.Sequential:
        layers = [BasicBlock(channels, channels, lite=lite) for _ in range(BLOCKS_PER_BRANCH)]
        if nam:
            layers.append(NAM(channels))  # key "branches.i.4.bn.*": after the 4th block, before fusion
        return nn.Sequential(*layers)

    @staticmethod
    def _make_fuse_layers(channels: List[int], multi_scale_output: bool) -> Optional[nn.ModuleList]:
        num_branches = len(channels)
        if num_branches == 1:
            return None
        fuse_layers = []
        for i in range(num_branches if multi_scale_output else 1):
            row = []  # type: List[Optional[nn.Module]]
            for j in range(num_branches):
                if j > i:  # lower resolution -> up: 1x1 conv, BN, nearest x2^(j-i)
                    row.append(nn.Sequential(
                        nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(channels[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(None)
                else:  # higher resolution -> down: (i-j) 3x3 stride-2 convs, ReLU between them
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out_channels = channels[i] if last else channels[j]
                        step = [nn.Conv2d(channels[j], out_channels, 3, 2, 1, bias=False), nn.BatchNorm2d(out_channels)]
                        if not last:
                            step.append(nn.ReLU(inplace=True))
                        steps.append(nn.Sequential(*step))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: List):
        x = [branch(xi) for branch, xi in zip(self.branches, x)]
        if self.fuse_layers is None:
            return x
        fused = []
        for i, row in enumerate(self.fuse_layers):
            # Same summation order as the official code: floating-point results match bit for bit.
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, len(x)):
                y = y + (x[j] if i == j else row[j](x[j]))
            fused.append(self.relu(y))
        return fused


class PoseHighResolutionNet(nn.Module):
    """Top-down pose network: image batch [N, 3, H, W] -> heatmaps [N, num_joints, H / 4, W / 4]."""

    def __init__(self, width: int = 32, lite: bool = False, nam: bool = False, num_joints: int = 17):
        super().__init__()
        self.width = width
        self.lite = lite
        self.nam = nam
        # stem: two 3x3 stride-2 convs, 64 channels
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = make_conv(lite, 64, 64, 3, 2)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        # stage 1: 4 Bottlenecks 64 -> 256
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64, downsample=make_downsample(lite, 64, 64 * Bottleneck.expansion), lite=lite),
            *[Bottleneck(64 * Bottleneck.expansion, 64, lite=lite) for _ in range(3)]
        )
        branch_channels = [width * 2 ** i for i in range(4)]
        previous = [64 * Bottleneck.expansion]
        for stage, num_modules in enumerate(STAGE_MODULES, start=2):
            current = branch_channels[:stage]
            setattr(self, "transition{}".format(stage - 1), self._make_transition(previous, current, lite))
            modules = [
                HighResolutionModule(current, lite, nam, multi_scale_output=not (stage == 4 and m == num_modules - 1))
                for m in range(num_modules)
            ]
            setattr(self, "stage{}".format(stage), nn.Sequential(*modules))
            previous = current
        self.final_layer = nn.Conv2d(width, num_joints, 1, 1, 0)
        self.init_weights()

    @staticmethod
    def _make_transition(previous: List[int], current: List[int], lite: bool) -> nn.ModuleList:
        """Adapt existing branches whose width changes; grow new branches from the lowest-resolution one."""
        layers = []  # type: List[Optional[nn.Module]]
        for i, out_channels in enumerate(current):
            if i < len(previous):
                if previous[i] == out_channels:
                    layers.append(None)
                else:
                    layers.append(nn.Sequential(
                        make_conv(lite, previous[i], out_channels, 3), nn.BatchNorm2d(out_channels),
                        nn.ReLU(inplace=True)))
            else:
                steps = []
                for j in range(i + 1 - len(previous)):
                    in_channels = previous[-1]
                    step_out = out_channels if j == i - len(previous) else in_channels
                    steps.append(nn.Sequential(
                        make_conv(lite, in_channels, step_out, 3, 2), nn.BatchNorm2d(step_out), nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def init_weights(self):
        """The official initialisation: conv weights N(0, 0.001), conv biases 0, BN weight 1 and bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    @staticmethod
    def _transit(transition: nn.ModuleList, features: List) -> List:
        out = []
        for i, layer in enumerate(transition):
            if layer is None:
                out.append(features[i])
            else:  # a new branch grows from the lowest-resolution map, as in the official forward
                out.append(layer(features[i] if i < len(features) else features[-1]))
        return out

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))  # [N, 64, H/2, W/2]
        x = self.relu(self.bn2(self.conv2(x)))  # [N, 64, H/4, W/4]
        features = [self.layer1(x)]  # [[N, 256, H/4, W/4]]
        features = self.stage2(self._transit(self.transition1, features))  # 2 branches
        features = self.stage3(self._transit(self.transition2, features))  # 3 branches
        features = self.stage4(self._transit(self.transition3, features))  # [[N, C, H/4, W/4]]
        return self.final_layer(features[0])  # [N, K, H/4, W/4]
