"""Parameter and conv multiply-add counts, reported the way the official HRNet summary does.

MACs are counted for ``nn.Conv2d`` only (weight elements x output positions, depthwise included), at batch 1 and the
variant's input size; "GFLOPs" = MACs / 2^30, the unit of the official ``get_model_summary`` and of the paper.
Parameters are all ``nn.Parameter`` elements (BN affine included, running statistics not).
"""

from dataclasses import dataclass
from typing import Tuple

import torch
from torch import nn

from goatpose_edge.variants import VariantCfg


@dataclass(frozen=True)
class Complexity:
    """Measured complexity of one variant, with the paper's figures beside it."""

    name: str
    params: int  # parameter elements
    macs: int  # conv multiply-adds at batch 1
    input_shape: Tuple[int, ...]  # (1, 3, H, W)
    output_shape: Tuple[int, ...]  # (1, K, H/4, W/4)
    paper_params_m: float
    paper_gflops: float

    @property
    def gflops(self) -> float:
        return self.macs / 2 ** 30

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def params_deviation_pct(self) -> float:
        """Ours vs the paper, in % of the paper's figure."""
        return 100.0 * (self.params_m - self.paper_params_m) / self.paper_params_m

    @property
    def gflops_deviation_pct(self) -> float:
        return 100.0 * (self.gflops - self.paper_gflops) / self.paper_gflops


def count_conv_macs(model: nn.Module, input_shape: Tuple[int, ...]) -> Tuple[int, Tuple[int, ...]]:
    """Run one forward pass at ``input_shape`` and sum the conv MACs; returns (macs, output shape).

    Uses the 'meta' device when this torch has it (shapes only, no arithmetic), the CPU otherwise.
    """
    total = [0]

    def hook(module, inputs, output):
        spatial = 1
        for size in output.shape[2:]:
            spatial *= int(size)
        total[0] += module.weight.numel() * spatial * int(output.shape[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        try:
            probe = model.to("meta")
            x = torch.zeros(input_shape, device="meta")
        except (RuntimeError, TypeError, NotImplementedError):  # torch without a usable meta device
            probe, x = model, torch.zeros(input_shape)
        with torch.no_grad():
            output = probe(x)
    finally:
        for handle in handles:
            handle.remove()
    return total[0], tuple(int(s) for s in output.shape)


def measure(cfg: VariantCfg, model: nn.Module) -> Complexity:
    """Complexity of ``model`` (built for ``cfg``). The model is moved to the meta device: build a fresh one."""
    params = sum(p.numel() for p in model.parameters())
    input_shape = (1, 3) + tuple(cfg.input_size)
    macs, output_shape = count_conv_macs(model, input_shape)
    return Complexity(cfg.name, params, macs, input_shape, output_shape, cfg.paper.params_m, cfg.paper.gflops)


def complexity_table(rows) -> str:
    """Markdown table of measured complexity beside the paper's figures (one row per ``Complexity``)."""
    lines = [
        "| model | input | output | params | paper params | dev | conv MACs | GFLOPs (MACs/2^30) | paper GFLOPs | dev |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in rows:
        lines.append("| {} | {} | {} | {:,} ({:.2f} M) | {:.2f} M | {:+.1f} % | {:,} | {:.2f} | {:.2f} | {:+.1f} % |".format(
            c.name, "x".join(map(str, c.input_shape)), "x".join(map(str, c.output_shape)), c.params, c.params_m,
            c.paper_params_m, c.params_deviation_pct, c.macs, c.gflops, c.paper_gflops, c.gflops_deviation_pct))
    return "\n".join(lines)


def complexity_record(c: Complexity) -> dict:
    """JSON-ready dict of one measurement (for ``goatpose info --json`` and the benchmark records)."""
    return {
        "model": c.name, "input_shape": list(c.input_shape), "output_shape": list(c.output_shape),
        "params": c.params, "macs": c.macs, "gflops": round(c.gflops, 4),
        "paper_params_m": c.paper_params_m, "paper_gflops": c.paper_gflops,
        "params_deviation_pct": round(c.params_deviation_pct, 3), "gflops_deviation_pct": round(c.gflops_deviation_pct, 3),
    }
