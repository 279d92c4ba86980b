"""A pose "model" without weights to learn: an ONNX graph that finds the synthetic scene's colour-coded joint dots.

    build_dot_pose_onnx("dotpose.onnx")                       # input [N, 3, 256, 192] -> heatmaps [N, 17, 64, 48]
    with open_runner("dotpose.onnx") as runner:
        persons = TopDownPoseEstimator(FigureDetector(), runner)(frame)

It has the I/O and the model contract of an exported pose model (input "input" normalised as the contract says,
output "heatmaps", dynamic batch "batch", opset 13, IR version 7), so every stage after the model (runners, codec,
pipeline, tracking, engines) runs on it unchanged. The graph, for the crop's pixels p (RGB, 0..1) and each joint's
colour c_k (``figure.JOINT_COLOURS`` as RGB / 255):

    Conv 1x1           p = x * std / 255 + mean / 255                               un-normalise  [N, 3, H, W]
    Mul, Concat        [p * p, p]                                                                 [N, 6, H, W]
    Conv 1x1           -||p - c_k||^2 / (2 s^2) = (-|p|^2 + 2 p.c_k - |c_k|^2) / (2 s^2)          [N, 17, H, W]
    Exp                colour similarity, 1 on the dot, < 0.01 at another joint's colour
    AveragePool 5/4    coverage per heatmap cell; kernel 5, pads 2: cell j is centred on input pixel 4 j, the point
                       the codec maps it to (a 4x4 window would shift every keypoint by 1.5 input pixels)
    Conv 13x13, group 17   a fixed Gaussian (sigma 2 cells, like the training targets) times a gain
    Tanh               heatmaps, ~0.9 at a dot of the expected size, < 0.03 where the joint's colour is absent

Every op is in the TensorRT 8.2 ONNX parser's list (``goatpose lint`` passes, and ``goatpose build --precision
fp16`` succeeds under the TensorRT 8.0.1 / 8.2.1 fakes), and every intermediate stays within FP16 range (pixels are
in 0..1 before they are squared; the largest magnitude is the colour distance, ~61). The blur is symmetric, so a
heatmap's peak sits at the dot's centre and the codec's quarter-offset and DARK decoders refine it as they would a
trained model's.

``onnx`` is imported inside ``build_dot_pose_onnx`` only (host side); the file it writes runs anywhere.
"""

import json
import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from goatpose_edge import __version__
from goatpose_edge.artefact.contract import METADATA_KEY, ModelContract
from goatpose_edge.errors import DependencyError
from goatpose_edge.fileio import atomic_output
from goatpose_edge.artefact.onnx_meta import COMPLEXITY_KEY
from goatpose_edge.synthetic.figure import JOINT_COLOURS, SceneError

__all__ = ["DOTPOSE_KEY", "DotPoseOptions", "build_dot_pose_onnx", "dot_pose_contract"]

#: Metadata key of the graph's own parameters (``DotPoseOptions``), for the record.
DOTPOSE_KEY = "goatpose_dotpose"


def dot_pose_contract(input_size: Tuple[int, int] = (256, 192)) -> ModelContract:
    """The contract the dot model carries: name "dotpose", family "synthetic", ImageNet RGB normalisation."""
    return ModelContract(name="dotpose", family="synthetic", input_size=(int(input_size[0]), int(input_size[1])),
                         version=__version__, weights="constructed: finds the synthetic scenes' coloured joint dots "
                                                      "(not learned; real images give nothing)")


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """[size, size] float64 Gaussian summing to 1."""
    axis = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-axis ** 2 / (2 * sigma ** 2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


def _expected_peak(dot_radius_px: float, kernel: np.ndarray, stride: int) -> float:
    """The blurred coverage peak of a dot of ``dot_radius_px`` input pixels (before the gain): the pooling and the
    blur of the graph replayed in numpy on one centred dot."""
    size = 32 * stride + 1  # the dot at the centre pixel, which is the centre of cell 16
    ys, xs = np.mgrid[0:size, 0:size] - size // 2
    dot = (xs ** 2 + ys ** 2 <= dot_radius_px ** 2).astype(np.float64)  # [size, size]
    cells = size // stride
    half = stride // 2  # the AveragePool of the graph: kernel stride + 1, pads stride / 2
    pooled = np.zeros((cells, cells))
    for i in range(cells):
        for j in range(cells):
            y, x = i * stride, j * stride
            pooled[i, j] = dot[max(0, y - half):y + half + 1, max(0, x - half):x + half + 1].mean()
    centre_y, centre_x = size // 2 // stride, size // 2 // stride
    reach = kernel.shape[0] // 2
    window = np.pad(pooled, reach)[centre_y:centre_y + 2 * reach + 1, centre_x:centre_x + 2 * reach + 1]
    return float((window * kernel).sum())


@dataclass
class DotPoseOptions:
    """Parameters of the graph (defaults measured on ``scene`` figures)."""

    colour_sigma: float = 40.0  # width of the colour similarity, 0..255 units (palette colours are >= 127 apart;
    #                             MJPG and mp4v move a dot's centre colour by up to ~25)
    blur_sigma: float = 2.0  # the Gaussian, heatmap cells
    blur_size: int = 13  # its kernel side, odd
    dot_radius_px: float = 5.0  # expected dot radius in input-crop pixels: a figure of height H with the default
    #                             H / 36 dots, boxed by FigureDetector, is cropped at ~180 / H crop px per frame px
    peak: float = 0.9  # heatmap maximum at a dot of that radius

    def __post_init__(self):
        if not (self.colour_sigma > 0 and self.blur_sigma > 0 and self.dot_radius_px > 0 and 0 < self.peak < 1):
            raise SceneError("DotPoseOptions need colour_sigma, blur_sigma, dot_radius_px > 0 and 0 < peak < 1, got "
                             "{}, {}, {}, {}".format(self.colour_sigma, self.blur_sigma, self.dot_radius_px,
                                                     self.peak))
        if self.blur_size < 3 or self.blur_size % 2 == 0:
            raise SceneError("DotPoseOptions.blur_size must be an odd number >= 3, got {}".format(self.blur_size))

    def to_dict(self) -> dict:
        return asdict(self)


def _weights(contract: ModelContract, options: DotPoseOptions):
    """The graph's constant tensors (float32), by name."""
    order = slice(None, None, -1) if contract.channel_order == "RGB" else slice(None)
    colours = np.asarray(JOINT_COLOURS, np.float64)[:, order] / 255.0  # [17, 3] in the network's channel order
    std = np.asarray(contract.std, np.float64) / 255.0
    mean = np.asarray(contract.mean, np.float64) / 255.0
    scale = 1.0 / (2.0 * (options.colour_sigma / 255.0) ** 2)
    colour_w = np.concatenate([np.full((17, 3), -scale), 2.0 * scale * colours], axis=1)  # [17, 6]
    kernel = _gaussian_kernel(options.blur_size, options.blur_sigma)
    gain = math.atanh(options.peak) / _expected_peak(options.dot_radius_px, kernel, contract.heatmap_stride)
    return {
        "unnorm_w": np.diag(std).reshape(3, 3, 1, 1), "unnorm_b": mean,
        "colour_w": colour_w.reshape(17, 6, 1, 1), "colour_b": -scale * (colours ** 2).sum(axis=1),
        "blur_w": np.tile((gain * kernel)[None, None], (17, 1, 1, 1)),
    }


def _complexity(contract: ModelContract, weights: dict, blur_size: int) -> dict:
    """The record ``onnx_meta.read_complexity`` returns (conv MACs per image; no paper figures)."""
    height, width = contract.input_size
    cells = (height // contract.heatmap_stride) * (width // contract.heatmap_stride)
    macs = height * width * (3 * 3 + 17 * 6) + cells * 17 * blur_size * blur_size
    hm_h, hm_w = contract.heatmap_size
    return {"model": contract.name, "input_shape": [1, 3, height, width], "output_shape": [1, 17, hm_h, hm_w],
            "params": int(sum(w.size for w in weights.values())), "macs": int(macs),
            "gflops": round(macs / float(2 ** 30), 4), "paper_params_m": None, "paper_gflops": None,
            "params_deviation_pct": None, "gflops_deviation_pct": None}


def build_dot_pose_onnx(path: str, input_size: Sequence[int] = (256, 192),
                        options: Optional[DotPoseOptions] = None) -> str:
    """Write the dot model for crops of ``input_size`` (H, W) to ``path`` (atomically) and return ``path``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise DependencyError("building the dot model needs the onnx package (host side): pip install onnx") from exc
    options = options or DotPoseOptions()
    contract = dot_pose_contract(tuple(input_size))
    height, width = contract.input_size
    hm_h, hm_w = contract.heatmap_size
    weights = _weights(contract, options)
    pad = options.blur_size // 2
    stride = contract.heatmap_stride
    nodes = [
        helper.make_node("Conv", ["input", "unnorm_w", "unnorm_b"], ["rgb"], name="unnormalise"),
        helper.make_node("Mul", ["rgb", "rgb"], ["rgb_sq"], name="square"),
        helper.make_node("Concat", ["rgb_sq", "rgb"], ["features"], axis=1, name="features"),
        helper.make_node("Conv", ["features", "colour_w", "colour_b"], ["log_similarity"], name="colour_distance"),
        helper.make_node("Exp", ["log_similarity"], ["similarity"], name="similarity"),
        helper.make_node("AveragePool", ["similarity"], ["coverage"], kernel_shape=[stride + 1, stride + 1],
                         strides=[stride, stride], pads=[stride // 2] * 4, count_include_pad=0, name="coverage"),
        helper.make_node("Conv", ["coverage", "blur_w"], ["response"], group=17, kernel_shape=[options.blur_size] * 2,
                         pads=[pad] * 4, name="gaussian"),
        helper.make_node("Tanh", ["response"], ["heatmaps"], name="saturate"),
    ]
    initializers = [numpy_helper.from_array(np.asarray(value, np.float32), name) for name, value in weights.items()]
    graph = helper.make_graph(
        nodes, "dotpose", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, height, width])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["batch", 17, hm_h, hm_w])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="goatpose-edge",
                              producer_version=__version__)
    model.ir_version = 7
    helper.set_model_props(model, {
        METADATA_KEY: contract.to_json(), DOTPOSE_KEY: json.dumps(options.to_dict(), sort_keys=True),
        COMPLEXITY_KEY: json.dumps(_complexity(contract, weights, options.blur_size), sort_keys=True)})
    onnx.checker.check_model(model)
    with atomic_output(path) as tmp_path:
        onnx.save(model, tmp_path)
    return path
