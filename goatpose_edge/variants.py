"""The model table: every variant the toolkit builds, as data.

One explicit dict, no registry. Each entry says which HRNet body to build (width, conv block, attention), at which
input size, and what the paper reports for it. The input contract of each variant comes from here.

Torch-free (it sits outside ``models/``) so that the CLI and the device side can read names, contracts and the
paper's figures without importing torch; ``goatpose_edge.models`` builds the networks from it.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from goatpose_edge import __version__
from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.errors import UnknownModelError


@dataclass(frozen=True)
class PaperFigures:
    """What the GoatPose paper reports for a model (Tables 2-4); None where it reports nothing."""

    params_m: float  # parameters in millions
    gflops: float  # conv multiply-adds / 2^30 (the official HRNet summary's unit)
    ap: Optional[float] = None  # COCO val2017 keypoint AP, %
    fps_gpu: Optional[float] = None  # Table 2 speed
    fps_tx2: Optional[float] = None  # Table 4, Jetson TX2


@dataclass(frozen=True)
class VariantCfg:
    """One row of the model table."""

    name: str  # CLI / API name, lower case
    family: str  # "goatpose", "hrnet" or "nam-hrnet"
    width: int  # C: branch widths are C, 2C, 4C, 8C
    input_size: Tuple[int, int]  # (H, W) in pixels
    lite: bool  # replace the convolutions MODEL.md lists with LiteConv blocks
    nam: bool  # NAM channel attention after the last BasicBlock of every branch
    paper: PaperFigures

    @property
    def contract(self) -> ModelContract:
        return ModelContract(name=self.name, family=self.family, input_size=self.input_size, version=__version__)

    @property
    def num_joints(self) -> int:
        """Heatmap channels of the network: one per keypoint of the contract (``keypoint_names``)."""
        return self.contract.num_keypoints


_LOW = (256, 192)
_HIGH = (384, 288)

VARIANTS = {
    cfg.name: cfg
    for cfg in (
        VariantCfg("goatpose-bl", "goatpose", 32, _LOW, True, True, PaperFigures(15.51, 3.48, 74.5, 277, 51)),
        VariantCfg("goatpose-bh", "goatpose", 32, _HIGH, True, True, PaperFigures(15.51, 7.84, 75.6, 131)),
        VariantCfg("goatpose-xl", "goatpose", 48, _LOW, True, True, PaperFigures(34.76, 7.81, 76.1, 180)),
        VariantCfg("goatpose-xh", "goatpose", 48, _HIGH, True, True, PaperFigures(34.76, 17.53, 76.5, 86)),
        VariantCfg("hrnet-w32", "hrnet", 32, _LOW, False, False, PaperFigures(29, 7.1, 74.4, 136, 23)),
        VariantCfg("hrnet-w32-384x288", "hrnet", 32, _HIGH, False, False, PaperFigures(29, 16, 75.8, 64)),
        VariantCfg("hrnet-w48", "hrnet", 48, _LOW, False, False, PaperFigures(64, 14.6, 75.1, 96)),
        VariantCfg("hrnet-w48-384x288", "hrnet", 48, _HIGH, False, False, PaperFigures(64, 32.9, 76.3, 46)),
        VariantCfg("nam-hrnet-w32", "nam-hrnet", 32, _LOW, False, True, PaperFigures(35, 7.8, 76.1)),
    )
}  # type: Dict[str, VariantCfg]


def get_variant(name: str) -> VariantCfg:
    """Look a variant up by name (case-insensitive); the error lists the known names."""
    key = name.strip().lower()
    if key not in VARIANTS:
        raise UnknownModelError("unknown model {!r}; known models: {}".format(name, ", ".join(VARIANTS)))
    return VARIANTS[key]
