"""The paper's recipe (MODEL.md, "Training recipe"): joints MSE with target weights + NAM L1 sparsity; Adam 1e-3,
x0.4 at epochs 170, 230 and 260 of 280."""

from dataclasses import asdict, dataclass, field
from typing import List

import torch
from torch import nn

from goatpose_edge.models import nam_l1_penalty


@dataclass
class Recipe:
    epochs: int = 280
    lr: float = 1e-3
    milestones: List[int] = field(default_factory=lambda: [170, 230, 260])
    gamma: float = 0.4
    nam_penalty: float = 1e-4

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based): a pure function of the epoch, so a resume is exact."""
        return self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)

    def to_dict(self) -> dict:
        return asdict(self)


class JointsMSELoss(nn.Module):
    """HRNet's loss: 0.5 x mean over joints of MSE(pred x w, target x w); pred/target [N, K, h, w], weight [N, K, 1]."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n, k = pred.shape[:2]
        pred = pred.reshape(n, k, -1) * weight
        target = target.reshape(n, k, -1) * weight
        return 0.5 * ((pred - target) ** 2).mean(dim=(0, 2)).mean()


def total_loss(model: nn.Module, pred, target, weight, recipe: Recipe):
    """(loss to minimise, joints MSE, NAM penalty) for one batch."""
    mse = JointsMSELoss()(pred, target, weight)
    penalty = nam_l1_penalty(model, recipe.nam_penalty).to(mse.device)
    return mse + penalty, mse, penalty
