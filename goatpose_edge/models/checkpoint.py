"""Reading and writing checkpoints: one filter for every foreign format, one strict loader, one error message.

Formats understood (after ``torch.load``):

    official HRNet          plain state_dict, keys ``conv1.weight``, ``stage4.2.fuse_layers.0.3.0.0.weight``, ...
    mmpose 0.x top-down     {"state_dict": {"backbone.*", "keypoint_head.final_layer.*"}, "meta": ...}
    mmpose 1.x top-down     {"state_dict": {"backbone.*", "head.final_layer.*"}, "meta": ...}
    DataParallel / DDP      any of the above with ``module.`` prefixes
    wrappers                {"state_dict" | "model" | "net": state_dict}
    goatpose-edge           {"format": FORMAT, "variant": name, "contract": json, "state_dict": ...} (+ training state)

A checkpoint is a pickle and unpickling can run code: loading uses ``torch.load(weights_only=True)`` wherever the
installed torch has it, and anything besides tensors and plain containers is refused unless the caller trusts it.
"""

import inspect
import os
import pickle
import re
import warnings
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from goatpose_edge import __version__
from goatpose_edge.errors import CheckpointError
from goatpose_edge.fileio import atomic_output
from goatpose_edge.variants import VARIANTS

FORMAT = "goatpose-edge-checkpoint"

_WRAPPER_KEYS = ("state_dict", "model", "net")

# Foreign key prefixes -> ours, applied in this order to every key (the timm ``checkpoint_filter_fn`` idea).
_KEY_PREFIXES = (
    ("module.", ""),  # torch DataParallel / DistributedDataParallel
    ("backbone.", ""),  # mmpose 0.x and 1.x TopDown: HRNet backbone keys equal the official ones
    ("keypoint_head.final_layer.", "final_layer."),  # mmpose 0.x TopdownHeatmapSimpleHead (no deconvs)
    ("head.final_layer.", "final_layer."),  # mmpose 1.x HeatmapHead (no deconvs)
)

_NAM_KEY = re.compile(r"\.branches\.\d+\.\d+\.bn\.weight$")
_SHOW = 5  # keys listed per kind in a mismatch message


def _has_weights_only() -> bool:
    return "weights_only" in inspect.signature(torch.load).parameters


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _torch_load(path: str, trusted: bool) -> Any:
    if not os.path.isfile(path):
        raise CheckpointError("checkpoint not found: {}".format(path))
    kwargs = {"map_location": "cpu"}
    if _has_weights_only():
        kwargs["weights_only"] = not trusted
    elif not trusted:
        warnings.warn("torch {} has no weights_only loading: {} is fully unpickled, which can run code; load only "
                      "checkpoints you trust".format(torch.__version__, path))
    try:
        return torch.load(path, **kwargs)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if blocked:
            raise CheckpointError(
                "{} holds Python objects besides weights ({}); refusing to unpickle it because that can run code. "
                "If you trust the file, load it with trusted=True (CLI: --trust-checkpoint), or re-save only its "
                "state_dict".format(path, blocked.group(1))) from exc
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        raise CheckpointError("cannot read checkpoint {}: not a PyTorch checkpoint or truncated ({})".format(
            path, detail.group(1).strip() if detail else _first_line(exc))) from exc
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError) as exc:
        raise CheckpointError("cannot read checkpoint {}: not a PyTorch checkpoint or truncated ({})".format(
            path, _first_line(exc))) from exc


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def map_foreign_keys(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    """Rename foreign keys (prefix table above) to this toolkit's names; other keys pass unchanged."""
    mapped = {}
    for key, value in state_dict.items():
        new_key = key
        for old, new in _KEY_PREFIXES:
            if new_key.startswith(old):
                new_key = new + new_key[len(old):]
        mapped[new_key] = value
    return mapped


def read_checkpoint(path: str, trusted: bool = False) -> Tuple[Dict[str, torch.Tensor], Optional[str]]:
    """Load any supported checkpoint: (state_dict with our key names, recorded variant name or None)."""
    obj = _torch_load(path, trusted)
    recorded = None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        recorded = obj.get("variant")
    while isinstance(obj, dict) and not _is_state_dict(obj):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not _is_state_dict(obj):
        found = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError("{} holds no state_dict (found {}); expected a state_dict or a dict with one of {}".format(
            path, found, "/".join(_WRAPPER_KEYS)))
    return map_foreign_keys(obj), recorded


def matching_variants(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Variant names whose architecture (width, LiteConv, NAM, joints) these weights have; [] when none."""
    final = state_dict.get("final_layer.weight")
    if final is None or final.dim() != 4:
        return []
    lite = any(".primary_conv." in key for key in state_dict)
    nam = any(_NAM_KEY.search(key) for key in state_dict)
    return [cfg.name for cfg in VARIANTS.values()
            if (cfg.width, cfg.lite, cfg.nam, cfg.num_joints) == (final.shape[1], lite, nam, final.shape[0])]


def load_state_dict_strict(model: nn.Module, state_dict: Dict[str, torch.Tensor], source: str, name: str) -> None:
    """``model.load_state_dict(strict=True)`` with one readable line when the keys or shapes do not match."""
    expected = model.state_dict()
    fits = matching_variants(state_dict)
    state_dict = dict(state_dict)
    for key, value in expected.items():
        # Checkpoints saved before torch 0.4.1 (the official HRNet ones) have no BN step counters; eval ignores them.
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [k for k in expected if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        parts = ["{} missing, {} unexpected, {} shape-mismatched keys".format(
            len(missing), len(unexpected), len(mismatched))]
        if missing:
            parts.append("missing: " + ", ".join(missing[:_SHOW]) + (", ..." if len(missing) > _SHOW else ""))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:_SHOW]) + (", ..." if len(unexpected) > _SHOW else ""))
        if mismatched:
            parts.append("shape-mismatched: " + ", ".join(
                "{} {} vs model {}".format(k, list(state_dict[k].shape), list(expected[k].shape))
                for k in mismatched[:_SHOW]) + (", ..." if len(mismatched) > _SHOW else ""))
        hint = "its weights fit {}".format(" / ".join(fits)) if fits else "it matches no known model"
        raise CheckpointError("checkpoint {} does not fit {}: {}; {}".format(source, name, "; ".join(parts), hint))
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint(model: nn.Module, path: str, **extra: Any) -> None:
    """Write the toolkit's own format (atomically): weights, variant, contract, plus ``extra`` (training state)."""
    variant = getattr(model, "variant", None)
    if variant is None:
        raise CheckpointError("this model was not built by goatpose_edge.models.build_model: its variant is unknown")
    payload = {
        "format": FORMAT,
        "version": __version__,
        "variant": variant.name,
        "contract": variant.contract.to_json(),
        "state_dict": model.state_dict(),
    }
    payload.update(extra)
    with atomic_output(path) as tmp_path:
        torch.save(payload, tmp_path)
