"""Start GoatPose from an official HRNet checkpoint of the same width.

Every tensor whose name and shape GoatPose shares with HRNet (stem conv1, BNs, fuse layers, final layer) is copied;
each LiteConv's primary conv (``<conv>.primary_conv.0.weight``, ceil(C_out/2) filters) takes the first filters of the
conv it replaced (``<conv>.weight``); LiteConv's cheap operation and inner BNs and the NAMs stay freshly initialised.
"""

from dataclasses import dataclass, field
from typing import Dict, List

import torch
from torch import nn

from goatpose_edge.errors import CheckpointError

PRIMARY = ".primary_conv.0.weight"


@dataclass
class InitReport:
    copied: List[str] = field(default_factory=list)
    adapted: List[str] = field(default_factory=list)
    fresh: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)  # HRNet tensors with no place in the model

    def line(self) -> str:
        return "{} tensors copied, {} adapted (LiteConv primary convs), {} left fresh; {} HRNet tensors unused".format(
            len(self.copied), len(self.adapted), len(self.fresh), len(self.unused))


def init_from_hrnet(model: nn.Module, hrnet_state: Dict[str, torch.Tensor]) -> InitReport:
    """Copy/adapt ``hrnet_state`` (our key names, see ``models.checkpoint.map_foreign_keys``) into ``model``."""
    target = model.state_dict()
    final = hrnet_state.get("final_layer.weight")
    ours = target["final_layer.weight"]
    if final is None or final.dim() != 4 or final.shape[1] != ours.shape[1]:
        raise CheckpointError("--init-from needs an HRNet checkpoint of width {} (final_layer.weight [{}, {}, 1, 1]); "
                              "got {}".format(ours.shape[1], ours.shape[0], ours.shape[1],
                                              None if final is None else list(final.shape)))
    report = InitReport()
    used = set()
    update = {}
    for key, tensor in target.items():
        source = hrnet_state.get(key)
        if source is not None and source.shape == tensor.shape:
            update[key] = source.clone()
            report.copied.append(key)
            used.add(key)
            continue
        if key.endswith(PRIMARY):
            replaced = key[:-len(PRIMARY)] + ".weight"
            source = hrnet_state.get(replaced)
            if source is not None and source.dim() == 4 and source.shape[1:] == tensor.shape[1:] \
                    and source.shape[0] >= tensor.shape[0]:
                update[key] = source[:tensor.shape[0]].clone()
                report.adapted.append(key)
                used.add(replaced)
                continue
        report.fresh.append(key)
    report.unused = sorted(k for k in hrnet_state if k not in used)
    model.load_state_dict(update, strict=False)
    return report
