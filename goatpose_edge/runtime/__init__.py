"""Runners behind one small contract (``Runner``): torch, onnxruntime and TensorRT (pycuda).

Device side: numpy at module level, each backend imported when its runner activates, never torch at import.
``load_runner(path)`` picks the backend by artefact and every runner reads the model contract (None: not a pose model),
precision and complexity from its artefact. Only a checkpoint needs to be told which model it holds (``model_name``,
when it does not record it) and whether it may unpickle objects (``trusted``); the other artefacts record their model
and ignore both, so a caller passes them for any path.
"""

import os
from typing import Optional

from goatpose_edge.errors import GoatPoseError
from goatpose_edge.runtime.base import Runner, RunnerError

__all__ = ["Runner", "RunnerError", "load_runner", "open_runner", "ARTEFACT_SUFFIXES"]

ARTEFACT_SUFFIXES = {".onnx": "onnxruntime", ".pth": "torch", ".pt": "torch", ".engine": "tensorrt",
                     ".plan": "tensorrt", ".trt": "tensorrt"}


def load_runner(path: str, model_name: Optional[str] = None, trusted: bool = False, **options) -> Runner:
    """The runner for an artefact, chosen by its suffix (``ARTEFACT_SUFFIXES``); ``model_name`` and ``trusted`` reach
    a checkpoint's runner (see above), ``options`` the backend."""
    if os.path.isdir(path):
        raise GoatPoseError("{} is a folder: give the artefact file (.onnx, .engine or .pth) in it".format(path))
    if not os.path.isfile(path):
        raise GoatPoseError("artefact not found: {}".format(path))
    suffix = os.path.splitext(path)[1].lower()
    backend = ARTEFACT_SUFFIXES.get(suffix)
    if backend == "onnxruntime":
        from goatpose_edge.runtime.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, **options)
    if backend == "torch":
        from goatpose_edge.runtime.torch_runner import TorchRunner

        return TorchRunner(path, model_name, trusted=trusted, **options)
    if backend == "tensorrt":
        from goatpose_edge.runtime.tensorrt_runner import TensorRTRunner

        return TensorRTRunner(path, **options)
    raise GoatPoseError("cannot run {}: unknown artefact type {!r}; supported: {}".format(
        path, suffix, ", ".join(sorted(ARTEFACT_SUFFIXES))))


def open_runner(path: str, threads=None, log=None, **options) -> Runner:
    """``load_runner`` with a CPU thread count for the backends that take one (onnxruntime, torch) and ``log`` (a
    callable taking a line) for the one that reports what an activation costs (TensorRT: its GPU memory)."""
    backend = ARTEFACT_SUFFIXES.get(os.path.splitext(path)[1].lower())
    if threads and backend in ("onnxruntime", "torch"):
        options["threads"] = threads
    if log is not None and backend == "tensorrt":
        options["log"] = log
    return load_runner(path, **options)
