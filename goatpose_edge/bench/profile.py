"""Where the time goes inside the network: onnxruntime's own profiler, summed per op type.

ONNX Runtime fuses while it optimises (Conv+Relu -> FusedConv, ...), so the op types are the kernels it really ran.
"""

import json
import os
import tempfile
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from goatpose_edge.errors import DependencyError


def conv_kind(args: dict) -> str:
    """Split convolutions by their weight [C_out, C_in/group, kh, kw] (from the event's ``input_type_shape``):
    dense, depthwise, or per-channel 1x1 (a BatchNorm or scale ORT could not fold, run as a grouped conv)."""
    try:
        weight = list(args["input_type_shape"][1].values())[0]
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    if len(weight) != 4 or weight[1] != 1:
        return " (dense)"
    return " (per-channel 1x1: unfolded BN/scale)" if weight[2] * weight[3] == 1 else " (depthwise)"


def summarise_profile(events: List[dict], runs: int) -> List[Dict[str, object]]:
    """onnxruntime trace events -> [{op_type, ms_per_run, pct, kernels}] sorted by time, for ``runs`` timed runs.

    Kernel events are ``{"cat": "Node", "name": "<node>_kernel_time", "dur": µs, "args": {"op_name": ...}}``;
    convolutions are split by kind (``conv_kind``)."""
    totals = defaultdict(float)
    nodes = defaultdict(set)
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        op = args.get("op_name", "?")
        if op in ("Conv", "FusedConv", "NchwcConv"):
            op += conv_kind(args)
        totals[op] += float(event.get("dur", 0))
        nodes[op].add(event["name"])
    grand = sum(totals.values()) or 1.0
    rows = [{"op_type": op, "ms_per_run": round(us / 1e3 / runs, 4), "pct": round(100 * us / grand, 2),
             "kernels": len(nodes[op])} for op, us in totals.items()]
    return sorted(rows, key=lambda row: -row["ms_per_run"])


def onnxruntime_op_profile(onnx_path: str, batch: int = 1, runs: int = 20, threads: Optional[int] = None,
                           warmup: int = 3) -> List[Dict[str, object]]:
    """Per-op-type time of ``onnx_path`` on onnxruntime's CPU provider over ``runs`` runs (after ``warmup``)."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyError("the op profile needs onnxruntime: pip install onnxruntime") from exc
    from goatpose_edge.artefact.onnx_meta import read_contract

    contract = read_contract(onnx_path)
    data = np.random.default_rng(0).standard_normal((batch, 3) + tuple(contract.input_size)).astype(np.float32)

    def session(profile_prefix):
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
        return onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    with tempfile.TemporaryDirectory(prefix="goatpose-profile-") as tmp:
        profiled = session(os.path.join(tmp, "ort"))
        name = profiled.get_inputs()[0].name
        for _ in range(warmup + runs):
            profiled.run(None, {name: data})
        events = _load(profiled.end_profiling())
    return summarise_profile(_drop_warmup(events, warmup), runs)


def _load(path: str) -> List[dict]:
    with open(path) as f:
        return json.load(f)


def _drop_warmup(events: List[dict], warmup: int) -> List[dict]:
    """Events from the first timed ``model_run`` on (the warm-up runs allocate and are slower)."""
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if warmup <= 0 or len(runs) <= warmup:
        return events
    return [e for e in events if e.get("ts", 0) >= runs[warmup]]
