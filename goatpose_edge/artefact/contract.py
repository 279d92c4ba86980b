"""The model contract: the one record of what a pose model expects and produces.

Every artefact carries it (ONNX ``metadata_props``, the engine's sidecar JSON, the toolkit's own checkpoints), and
every stage after the model (codec, runners, pipeline, benchmarks) reads it from there. Nothing else in the project
re-types the input size, the normalisation or the keypoint layout.

Device side: standard library only (numpy is not even needed), Python 3.6.
"""

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

from goatpose_edge.errors import ContractError

#: COCO person keypoints, in the order of the annotations and of the heatmap channels.
COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: COCO OKS sigmas (pycocotools' ``kpt_oks_sigmas``), one per keypoint in the order of ``COCO_KEYPOINT_NAMES``.
COCO_SIGMAS = tuple(s / 10.0 for s in (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                                       .89, .89))

#: Left/right keypoint pairs (0-based) swapped by a horizontal flip (HRNet's ``flip_pairs``).
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))

#: Limbs to draw, 0-based (the COCO annotation file's ``skeleton`` minus one).
COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

#: ImageNet normalisation in 0..255 pixel units, RGB order (HRNet: ToTensor then Normalize).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Key under which the contract is stored in ONNX metadata_props, sidecars and checkpoints.
METADATA_KEY = "goatpose_contract"

#: Names of the network input [N, 3, H, W] and output heatmaps [N, K, h, w] in every exported graph and its engines.
INPUT_NAME, OUTPUT_NAME = "input", "heatmaps"


#: how ``ModelContract.weights`` starts for a random initialisation
RANDOM_WEIGHTS = "random init"


@dataclass(frozen=True)
class ModelContract:
    """What a top-down pose model takes and gives; travels with every artefact.

    The model input is a float32 batch [N, 3, H, W] = ``(pixel - mean) / std`` in ``channel_order``; the output is
    heatmaps [N, K, H / heatmap_stride, W / heatmap_stride] with K = ``len(keypoint_names)``.
    """

    name: str  # variant name in the model table, e.g. "goatpose-bl"
    family: str  # "goatpose", "hrnet" or "nam-hrnet"
    input_size: Tuple[int, int]  # (H, W) of the network input in pixels, e.g. (256, 192)
    mean: Tuple[float, float, float] = IMAGENET_MEAN  # per channel, 0..255 pixel units, in channel_order
    std: Tuple[float, float, float] = IMAGENET_STD  # per channel, 0..255 pixel units, in channel_order
    channel_order: str = "RGB"  # channel order of the network input ("RGB" or "BGR"); frames arrive BGR
    heatmap_stride: int = 4  # input pixels per heatmap pixel
    keypoint_names: Tuple[str, ...] = COCO_KEYPOINT_NAMES
    flip_pairs: Tuple[Tuple[int, int], ...] = COCO_FLIP_PAIRS  # 0-based left/right pairs
    skeleton: Tuple[Tuple[int, int], ...] = COCO_SKELETON  # 0-based limbs for drawing
    flip_merged: bool = False  # the artefact already averages in the flipped input (``goatpose export --fliptest``)
    version: str = field(default="")  # goatpose-edge version that wrote the artefact
    # where the weights came from: "random init (seed S)" / "random init (unseeded)", "checkpoint FILE (sha256 HEX)",
    # "trained by goatpose train (...)"; "" when an older artefact did not say
    weights: str = field(default="")

    @property
    def random_weights(self) -> bool:
        """Whether the artefact's weights are a random initialisation (its poses are noise)."""
        return self.weights.startswith(RANDOM_WEIGHTS)

    def weights_warning(self) -> Optional[str]:
        """The one line every command that runs this model prints when its weights are random."""
        if not self.random_weights:
            return None
        return "random weights: poses are noise ({} has {}; see the README for real weights)".format(
            self.name, self.weights)

    def __post_init__(self):
        height, width = self.input_size
        if height <= 0 or width <= 0 or height % self.heatmap_stride or width % self.heatmap_stride:
            raise ContractError("input_size {} must be positive and divisible by the heatmap stride {}".format(
                self.input_size, self.heatmap_stride))
        if self.channel_order not in ("RGB", "BGR"):
            raise ContractError("channel_order must be 'RGB' or 'BGR', got {!r}".format(self.channel_order))
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ContractError("mean and std need 3 values and std > 0, got {} / {}".format(self.mean, self.std))
        num_keypoints = len(self.keypoint_names)
        for a, b in tuple(self.flip_pairs) + tuple(self.skeleton):
            if not (0 <= a < num_keypoints and 0 <= b < num_keypoints):
                raise ContractError("keypoint pair ({}, {}) is outside 0..{}".format(a, b, num_keypoints - 1))

    @property
    def input_name(self) -> str:
        """The network input tensor's name (``INPUT_NAME``: one for every artefact, so not stored with each)."""
        return INPUT_NAME

    @property
    def output_name(self) -> str:
        """The heatmap output tensor's name (``OUTPUT_NAME``)."""
        return OUTPUT_NAME

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def heatmap_size(self) -> Tuple[int, int]:
        """(H, W) of the output heatmaps."""
        return (self.input_size[0] // self.heatmap_stride, self.input_size[1] // self.heatmap_stride)

    @property
    def aspect_ratio(self) -> float:
        """Input width / height: the aspect ratio person boxes are padded to."""
        return self.input_size[1] / self.input_size[0]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelContract":
        """Rebuild a contract from ``to_dict`` output (lists become tuples). Unknown keys are an error."""
        if not isinstance(data, dict):
            raise ContractError("a model contract must be a JSON object, got {}".format(type(data).__name__))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError("unknown model contract fields {} (written by a newer goatpose-edge?)".format(unknown))
        missing = sorted(k for k in ("name", "family", "input_size") if k not in data)
        if missing:
            raise ContractError("model contract lacks {}".format(missing))
        values = dict(data)
        for key in ("input_size", "mean", "std", "keypoint_names"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("flip_pairs", "skeleton"):
            if key in values:
                values[key] = tuple(tuple(pair) for pair in values[key])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ContractError("invalid model contract: {}".format(exc)) from exc

    @classmethod
    def from_json(cls, text: str) -> "ModelContract":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ContractError("model contract is not valid JSON: {}".format(exc)) from exc
        return cls.from_dict(data)
