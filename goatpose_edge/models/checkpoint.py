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

import hashlib
import inspect
import io
import os
import re
import warnings
from dataclasses import replace
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


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save's legacy pickle header
_BLOCKED_GLOBAL = (
    re.compile(r"Unsupported global: GLOBAL ([\w.]+)"),  # torch >= 2.4: a global not on the allowlist
    re.compile(r"unsupported GLOBAL ([\w.]+) whose module"),  # torch >= 2.4: a module it always blocks (os, sys, ...)
    re.compile(r"Unsupported class ([\w.]+)"),  # torch 1.13 .. 2.3
)


def _torch_global_exists(name: str) -> bool:
    """Whether ``torch.x.y`` names an existing object, found without importing anything new."""
    obj = torch
    for part in name.split(".")[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


def _blocked_global(text: str) -> Optional[str]:
    """The Python object a weights-only load refused, or None. A ``torch.*`` name that does not exist is what a cut
    legacy file yields (``torch._utils._rebuild_tens``): that is truncation, not an object."""
    for pattern in _BLOCKED_GLOBAL:
        found = pattern.search(text)
        if found:
            name = found.group(1)
            if name.split(".")[0] == "torch" and not _torch_global_exists(name):
                return None
            return name
    return None


def _torch_detail(exc: BaseException) -> str:
    """The telling sentence of a torch.load error (its weights-only errors wrap it in paragraphs of advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = ""
    for index, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip() or " ".join(lines[index + 1:index + 2])
            break
    if not detail:
        detail = next((line for line in lines if not line.startswith(
            ("Weights only load failed", "Please file an issue", "Check the documentation"))), "")
    detail = re.split(r"(?<=[.!?])\s", detail, 1)[0].rstrip(".")
    if len(detail) > 100:
        detail = detail[:97] + "..."
    return detail or type(exc).__name__


_HEAD = 512  # bytes of a checkpoint sniffed to tell what it is when torch cannot load it


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # text too when only a character cut by the end of the sample is incomplete
        return len(head) == _HEAD and exc.start >= _HEAD - 3
    return True


def _load_error(path: str, head: bytes, exc: BaseException) -> CheckpointError:
    """One line for a failed ``torch.load``: what the file is (from its first bytes and torch's error) and what to do."""
    blocked = _blocked_global(str(exc))
    if blocked:
        return CheckpointError(
            "{} holds Python objects besides weights ({}), which can run code when loaded; refusing to unpickle "
            "it. If you trust the file: pass --trust-checkpoint (export, verify, eval, bench, train; Python: "
            "trusted=True), or for pose and video export it once with `goatpose export MODEL --weights {} "
            "--trust-checkpoint` and give them the .onnx; or re-save only its state_dict".format(path, blocked, path))
    if isinstance(exc, (ImportError, AttributeError)) and head.startswith((_ZIP_MAGIC, _LEGACY_MAGIC)):
        return CheckpointError("cannot load checkpoint {}: it pickles Python objects whose code is not importable "
                               "here ({}); load it where that code is and re-save only its state_dict".format(
                                   path, _torch_detail(exc)))
    if head.startswith((_ZIP_MAGIC, _LEGACY_MAGIC)):
        return CheckpointError("cannot read checkpoint {}: truncated or not a PyTorch checkpoint ({}); copy or "
                               "download it again".format(path, _torch_detail(exc)))
    if _looks_like_text(head):
        what = "a text file"
    elif head.startswith(b"\x80"):
        what = "a plain pickle, not one torch.save writes"
    else:
        what = "neither a zip archive nor a pickle torch.save writes"
    return CheckpointError("cannot read checkpoint {}: not a PyTorch checkpoint ({}); pass a .pth/.pt file written by "
                           "torch.save".format(path, what))


def torch_load(path: str, trusted: bool) -> Any:
    """``torch.load`` of ``path`` with one ``CheckpointError`` line for a missing, empty, text, truncated or
    non-PyTorch file, and for pickled objects unless ``trusted`` (weights-only loading otherwise)."""
    if not os.path.isfile(path):
        raise CheckpointError("checkpoint not found: {}".format(path))
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError as exc:
        raise CheckpointError("cannot read checkpoint {}: {}".format(path, exc.strerror or exc)) from exc
    if not head:
        raise CheckpointError("cannot read checkpoint {}: the file is empty (0 bytes); copy or download it "
                              "again".format(path))
    kwargs = {"map_location": "cpu"}
    if _has_weights_only():
        kwargs["weights_only"] = not trusted
    elif not trusted:
        warnings.warn("torch {} has no weights_only loading: {} is fully unpickled, which can run code; load only "
                      "checkpoints you trust".format(torch.__version__, path))
    try:
        return torch.load(path, **kwargs)
    except Exception as exc:  # any failure to unpickle is about the file (weights-only: only torch's code runs)
        raise _load_error(path, head, exc) from exc


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


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: mmpose's released checkpoints carry the first 8 hex digits of their sha256 before the date
_HASHED_NAME = re.compile(r"-([0-9a-f]{8})_\d{8}\.pth$")


def weights_provenance(path: str, obj: Any) -> str:
    """Where a checkpoint's weights came from: what the toolkit recorded when it wrote it, else the file's name and
    sha256 (checked against the 8 hex digits an mmpose file name carries)."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("weights"), str):
        return obj["weights"]
    digest = file_sha256(path)
    name = os.path.basename(path)
    match = _HASHED_NAME.search(name)
    if match and not digest.startswith(match.group(1)):
        raise CheckpointError("{}: its sha256 starts {}, not the {} its name promises: a damaged or different "
                              "download (compare with the published file)".format(path, digest[:8], match.group(1)))
    return "checkpoint {} (sha256 {})".format(name, digest[:16])


def read_checkpoint(path: str, trusted: bool = False, provenance: bool = False):
    """Load any supported checkpoint: (state_dict with our key names, recorded variant name or None), and with
    ``provenance`` the weights' origin (``weights_provenance``) third."""
    obj = torch_load(path, trusted)
    recorded = None
    weights = weights_provenance(path, obj) if provenance else None
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("variant"), str):
        recorded = obj["variant"]
    if isinstance(obj, nn.Module):  # a whole pickled model (trusted load only)
        obj = obj.state_dict()
    seen = set()  # a pickle can nest a dict in itself
    while isinstance(obj, dict) and not _is_state_dict(obj) and id(obj) not in seen:
        seen.add(id(obj))
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not _is_state_dict(obj):
        found = sorted(str(k) for k in obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError("{} holds no state_dict (found {}); expected a state_dict or a dict with one of {}".format(
            path, found, "/".join(_WRAPPER_KEYS)))
    if provenance:
        return map_foreign_keys(obj), recorded, weights
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
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # keys and shapes fit; a value that cannot be copied in (e.g. a complex tensor)
        raise CheckpointError("checkpoint {} does not fit {}: {}".format(source, name, _first_line(exc))) from exc


def nonfinite_tensors(state_dict: Dict[str, torch.Tensor]) -> List[Tuple[str, int]]:
    """[(key, number of NaN/Inf values)] of the floating-point tensors that hold any, in state_dict order."""
    found = []
    for key, value in state_dict.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
            count = int((~torch.isfinite(value)).sum())
            if count:
                found.append((key, count))
    return found


def require_finite(state_dict: Dict[str, torch.Tensor], source: str, action: str = "export") -> None:
    """Refuse weights or buffers with NaN/Inf, naming the first tensor: such a model computes NaN heatmaps."""
    bad = nonfinite_tensors(state_dict)
    if bad:
        key, count = bad[0]
        raise CheckpointError("{}: tensor {} holds {} NaN/Inf values{}; refusing to {}: use a checkpoint from before "
                              "training diverged, or fix the tensor".format(
                                  source, key, count, " (and {} more tensors)".format(len(bad) - 1) if len(bad) > 1
                                  else "", action))


def save_checkpoint(model: nn.Module, path: str, **extra: Any) -> None:
    """Write the toolkit's own format (atomically): weights, variant, contract, plus ``extra`` (training state)."""
    variant = getattr(model, "variant", None)
    if variant is None:
        raise CheckpointError("this model was not built by goatpose_edge.models.build_model: its variant is unknown")
    contract = getattr(model, "contract", variant.contract)
    weights = extra.pop("weights", None) or contract.weights
    payload = {
        "format": FORMAT,
        "version": __version__,
        "variant": variant.name,
        "contract": replace(contract, weights=weights).to_json(),
        "weights": weights,  # where they came from (random init with its seed, a checkpoint, training)
        "state_dict": model.state_dict(),
    }
    payload.update(extra)
    with atomic_output(path) as tmp_path:
        buffer = io.BytesIO()  # serialised first: torch reports a failed file write as a RuntimeError from
        torch.save(payload, buffer)  # inline_container.cc ("unexpected pos"), which hides a full disk (ENOSPC)
        with open(tmp_path, "wb") as f:
            f.write(buffer.getbuffer())
