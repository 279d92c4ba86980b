"""Flip test inside the graph: one engine call runs the batch and its mirror image and merges them HRNet's way."""

import torch
from torch import nn

from goatpose_edge.codec.flip import flip_permutation
from goatpose_edge.artefact.contract import ModelContract


class FlipTestWrapper(nn.Module):
    """[N, 3, H, W] -> [N, K, h, w]: (heatmaps(x) + shift(flip_back(heatmaps(mirror(x))))) / 2.

    Mirroring and channel swaps are Gathers with constant indices and the batch split is a Reshape with a constant
    shape, so the graph keeps a dynamic batch without shape arithmetic (TensorRT 8 parses all of it).
    """

    def __init__(self, model: nn.Module, contract: ModelContract):
        super().__init__()
        self.model = model
        height, width = contract.input_size
        self.heatmap_shape = (contract.num_keypoints,) + tuple(contract.heatmap_size)  # (K, h, w)
        self.register_buffer("input_mirror", torch.arange(width - 1, -1, -1))
        self.register_buffer("heatmap_mirror", torch.arange(contract.heatmap_size[1] - 1, -1, -1))
        self.register_buffer("channel_swap", torch.from_numpy(
            flip_permutation(contract.num_keypoints, contract.flip_pairs)).long())

    def forward(self, x):
        mirrored = x.index_select(3, self.input_mirror)  # [N, 3, H, W]
        heatmaps = self.model(torch.cat([x, mirrored], 0))  # [2N, K, h, w]
        pair = heatmaps.reshape((2, -1) + self.heatmap_shape)  # [2, N, K, h, w]
        back = pair[1].index_select(1, self.channel_swap).index_select(3, self.heatmap_mirror)  # [N, K, h, w]
        back = torch.cat([back[:, :, :, :1], back[:, :, :, :-1]], 3)  # HRNet's one-pixel shift to the right
        return (pair[0] + back) * 0.5
