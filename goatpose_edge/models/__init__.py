"""GoatPose and HRNet in PyTorch (host side): build a variant, load a checkpoint, measure its complexity.

    >>> from goatpose_edge.models import build_model, load_checkpoint
    >>> model = build_model("goatpose-bl")                      # random weights, eval mode
    >>> model = load_checkpoint("pose_hrnet_w32_256x192.pth", "hrnet-w32")
    >>> model.contract.input_size
    (256, 192)
"""

from dataclasses import replace
from typing import Optional

from goatpose_edge.artefact.contract import RANDOM_WEIGHTS
from goatpose_edge.errors import CheckpointError
from goatpose_edge.models.checkpoint import matching_variants, read_checkpoint, load_state_dict_strict, save_checkpoint
from goatpose_edge.models.deploy import to_deploy
from goatpose_edge.models.hrnet import PoseHighResolutionNet
from goatpose_edge.models.nam import nam_l1_penalty
from goatpose_edge.variants import VARIANTS, VariantCfg, get_variant

__all__ = [
    "VARIANTS", "VariantCfg", "PoseHighResolutionNet", "build_model", "get_variant", "load_checkpoint",
    "nam_l1_penalty", "save_checkpoint", "to_deploy",
]


def build_model(name: str, deploy: bool = False) -> PoseHighResolutionNet:
    """The torch module for variant ``name``, initialised as the official HRNet code does, in eval mode.

    ``model.variant`` is its row of the model table and ``model.contract`` its input contract. ``deploy=True`` returns
    the inference-only form (NAM folded; see ``to_deploy``).
    """
    cfg = get_variant(name)
    model = PoseHighResolutionNet(cfg.width, lite=cfg.lite, nam=cfg.nam, num_joints=cfg.num_joints)
    model.variant = cfg
    model.contract = replace(cfg.contract, weights="{} (unseeded)".format(RANDOM_WEIGHTS))
    return to_deploy(model) if deploy else model.eval()


def load_checkpoint(path: str, name: Optional[str] = None, deploy: bool = False,
                    trusted: bool = False) -> PoseHighResolutionNet:
    """``build_model(name)`` with the weights of ``path`` loaded strictly.

    ``name`` may be omitted for the toolkit's own checkpoints, which record their variant. ``trusted=True`` allows
    checkpoints that pickle Python objects besides weights (full unpickling can run code).
    """
    state_dict, recorded, weights = read_checkpoint(path, trusted=trusted, provenance=True)
    if name is None:
        if recorded is None:
            fits = matching_variants(state_dict)
            raise CheckpointError(
                "{} does not record which model it is; pass the model name ({}): --model NAME for goatpose verify and "
                "pose, the MODEL argument of goatpose export; bench, eval and video take no model name: export it "
                "first (goatpose export MODEL --weights {})".format(
                    path, "its weights fit " + " / ".join(fits) if fits else "it matches no known model", path))
        if recorded not in VARIANTS:
            raise CheckpointError("{} records model {!r}, which this goatpose-edge does not know (known: {}); pass the "
                                  "model name: --model NAME, or the MODEL argument of goatpose export".format(
                                      path, recorded, ", ".join(VARIANTS)))
        name = recorded
    model = build_model(name)
    load_state_dict_strict(model, state_dict, path, model.variant.name)
    model.contract = replace(model.contract, weights=weights)
    return to_deploy(model) if deploy else model.eval()
