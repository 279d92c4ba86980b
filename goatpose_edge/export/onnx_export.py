"""``goatpose export``: a PyTorch variant to a TensorRT-ready ONNX file, in a fixed order (after timm's onnx utils).

    1. model in its deploy form (eval, NAM folded), optionally wrapped for the in-graph flip test
    2. TorchScript-based export (``dynamo=False`` where torch has the switch), opset 13, input ``input``
       [N, 3, H, W] float32, output ``heatmaps`` [N, K, H/4, W/4], dynamic or static batch
    3. clean-up: onnx-simplifier, no-op Slices, duplicate Relus; IR version the TensorRT 8 parser accepts
    4. the model contract into ``metadata_props``; ``onnx.checker`` and strict shape inference
    5. TensorRT lint for the target
    6. parity: onnxruntime on the written file vs PyTorch, on seeded random input and real person crops; NaN/Inf
       output fails it, and weights or buffers holding NaN/Inf are refused before step 1
    7. rename into place: a failure at any step leaves no file behind
"""

import inspect
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence

from goatpose_edge import __version__
from goatpose_edge.artefact.contract import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ModelContract
from goatpose_edge.errors import DependencyError, GoatPoseError
from goatpose_edge.export import graph
from goatpose_edge.export.lint import MAX_IR_VERSION_TRT8, LintReport, lint
from goatpose_edge.export.parity import (FLIP_TOLERANCE, FP32_TOLERANCE, ParityReport, check, compare,
                                         flip_merged_reference)
from goatpose_edge.fileio import Output, atomic_output, check_output
from goatpose_edge.image_args import parity_inputs
from goatpose_edge.artefact.onnx_meta import COMPLEXITY_KEY
from goatpose_edge.variants import get_variant

OPSET_RANGE = {"trt8": (11, 13), "trt10": (11, 17)}
_SIDES = ("torch", "onnxruntime")  # the two sides of the export parity check, as its reports name them


@dataclass
class ExportResult:
    path: str
    contract: ModelContract
    opset: int
    batch: Optional[int]  # static batch, or None for a dynamic batch axis
    random_weights: bool
    census: Dict[str, int]
    removed: Dict[str, int]
    lint: LintReport
    parity: List[ParityReport] = field(default_factory=list)


def default_output_path(contract: ModelContract, batch: Optional[int] = None, fliptest: bool = False,
                        folder: str = "export") -> str:
    """``export/<variant>_<H>x<W>[_b<N>][_flip].onnx``."""
    name = "{}_{}x{}".format(contract.name, *contract.input_size)
    if batch:
        name += "_b{}".format(batch)
    if fliptest:
        name += "_flip"
    return os.path.join(folder, name + ".onnx")


def _require_host():
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise DependencyError("goatpose export needs PyTorch and onnx (host side): pip install "
                              "'goatpose-edge[host]' ({})".format(exc)) from exc


def _torch_export(module, example, path: str, opset: int, dynamic: bool) -> None:
    import torch

    kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                  do_constant_folding=True)
    if dynamic:
        kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: opset 13 graphs TensorRT 8 parses (torch 1.10 has no switch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer notes; the result is checked below
        with torch.no_grad():
            torch.onnx.export(module, (example,), path, **kwargs)


def export_onnx(model_name: str, weights: Optional[str] = None, output: Optional[str] = None, opset: int = 13,
                batch: Optional[int] = None, fliptest: bool = False, target: str = "trt8",
                images: Sequence[str] = (), trusted: bool = False,
                log: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Export ``model_name`` (weights from ``weights`` or random) to ``output``; see the module docstring.

    ``batch`` None gives a dynamic batch axis. ``images`` are parity crops ('img.jpg' or 'img.jpg@x,y,w,h').
    """
    _check_request(opset, target, batch, output)
    _require_host()
    model = _deploy_model(model_name, weights, trusted)
    contract = replace(model.contract, flip_merged=fliptest, version=__version__)
    output = output or default_output_path(contract, batch, fliptest)
    inputs = parity_inputs(contract, batch, images)  # validates images before the slow steps
    onnx_model = _traced_graph(model, contract, inputs[0][1], opset, batch, log)
    removed = _finish_graph(onnx_model, model_name, contract)
    report = lint(onnx_model, target)
    report.raise_for_violations(output)
    census = graph.census(onnx_model)
    parity = _write_checked(onnx_model, output, model, contract, inputs, log)
    return ExportResult(output, contract, opset, batch, contract.random_weights, census, removed, report, parity)


def _check_request(opset: int, target: str, batch: Optional[int], output: Optional[str]) -> None:
    """Options that cannot work fail before the model loads (an unwritable output too; the default folder is
    created)."""
    if target not in OPSET_RANGE:
        raise GoatPoseError("unknown target {!r}; choose trt8 or trt10".format(target))
    low, high = OPSET_RANGE[target]
    if not low <= opset <= high:
        raise GoatPoseError("opset {} is outside {}..{} for --target {} (TensorRT 8 parses opset <= 13)".format(
            opset, low, high, target))
    if batch is not None and batch < 1:
        raise GoatPoseError("--batch must be >= 1, got {}".format(batch))
    if output:
        check_output(Output(output, "output", (".onnx",)))


def _deploy_model(model_name: str, weights: Optional[str], trusted: bool):
    """The model in its deploy form (NAM folded), its weights checked finite before and after folding (NaN/Inf
    weights export fine and then compute NaN heatmaps; folding can overflow)."""
    from goatpose_edge.models import build_model, load_checkpoint, to_deploy
    from goatpose_edge.models.checkpoint import require_finite

    if weights:
        model, source = load_checkpoint(weights, model_name, trusted=trusted), "checkpoint " + weights
    else:
        model, source = build_model(model_name), model_name + " with random weights"
    require_finite(model.state_dict(), source)
    model = to_deploy(model)
    require_finite(model.state_dict(), source + " in its deploy form (NAM folded)")
    return model


def _traced_graph(model, contract, example, opset: int, batch: Optional[int], log):
    """torch.onnx.export of the model (wrapped in the flip test when the contract says so), simplified."""
    import onnx
    import torch

    module = model
    if contract.flip_merged:
        from goatpose_edge.export.fliptest import FlipTestWrapper

        module = FlipTestWrapper(model, contract).eval()
    with tempfile.TemporaryDirectory(prefix="goatpose-export-") as tmp:
        raw_path = os.path.join(tmp, "raw.onnx")
        log("exporting {} (opset {}, {} batch) ...".format(contract.name, opset, batch or "dynamic"))
        _torch_export(module, torch.from_numpy(example), raw_path, opset, dynamic=batch is None)
        return graph.simplify(onnx.load(raw_path))


def _finish_graph(onnx_model, model_name: str, contract) -> dict:
    """Redundant nodes removed, IR version TensorRT 8 reads, producer, the contract and complexity as metadata, and
    the ONNX checker with strict shape inference; returns what was removed."""
    import onnx

    from goatpose_edge.models import build_model
    from goatpose_edge.models.complexity import complexity_record, measure

    removed = graph.remove_redundant_nodes(onnx_model)
    onnx_model.ir_version = min(onnx_model.ir_version, MAX_IR_VERSION_TRT8)
    onnx_model.producer_name, onnx_model.producer_version = "goatpose-edge", __version__
    del onnx_model.metadata_props[:]
    complexity = complexity_record(measure(get_variant(model_name), build_model(model_name)))
    onnx.helper.set_model_props(onnx_model, {METADATA_KEY: contract.to_json(), COMPLEXITY_KEY: json.dumps(complexity)})
    try:
        onnx.checker.check_model(onnx_model)
        onnx.shape_inference.infer_shapes(onnx_model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GoatPoseError("exported graph of {} failed the ONNX checker: {}".format(contract.name, exc)) from exc
    return removed


def _write_checked(onnx_model, output: str, model, contract, inputs, log) -> list:
    """The graph written atomically to ``output`` only if onnxruntime on it matches PyTorch on every parity input
    (with the flip test: the codec's numpy merge of two plain PyTorch passes); returns the parity reports."""
    import onnx
    import torch

    from goatpose_edge.runtime.onnxruntime_runner import OnnxRuntimeRunner

    def torch_infer(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    parity = []
    with atomic_output(output) as tmp_path:
        onnx.save(onnx_model, tmp_path)
        with OnnxRuntimeRunner(tmp_path) as runner:
            for label, x in inputs:
                if contract.flip_merged:
                    expected = flip_merged_reference(torch_infer, x, contract)
                    parity.append(compare(label, expected, runner.infer(x), FLIP_TOLERANCE, _SIDES))
                else:
                    parity.append(compare(label, torch_infer(x), runner.infer(x), FP32_TOLERANCE, _SIDES))
        for line in (r.line() for r in parity):
            log("parity onnxruntime vs torch  " + line)
        check(parity, output)
    return parity
