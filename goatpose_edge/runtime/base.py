"""The runner contract every backend fills (after Polygraphy's ``BaseRunner``).

    with load_runner("export/goatpose-bl_256x192.onnx") as runner:
        heatmaps = runner.infer(batch)        # [N, 3, H, W] float32 -> [N, K, H/4, W/4] float32

The base class owns the state checks and input validation; a backend implements ``_activate``, ``_infer`` and
``_deactivate`` (and ``synchronize`` when ``infer`` can return before the device is done) and sets, from its
artefact, ``contract`` (None when the artefact carries none: then it is not a pose model, a detector say, and its
input shape comes from the backend as ``input_shape``), ``max_batch`` (None when unbounded), ``precision`` and
``complexity``. Whoever needs a pose model asks for ``pose_contract()``, which refuses a contract-less artefact.
"""

import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from goatpose_edge.artefact.contract import ModelContract
from goatpose_edge.errors import ContractError, GoatPoseError


#: the largest chunk sent to a dynamic-batch artefact (CPU batches beyond ~8 run no faster per person; memory stays
#: bounded in a crowd)
DEFAULT_MAX_BATCH = 8


def infer_chunked(runner, batch: np.ndarray, limit: Optional[int] = None, infer=None) -> np.ndarray:
    """Network input [N, 3, H, W] -> heatmaps [N, K, h, w] through ``runner`` in chunks its batch profile takes: at
    most ``limit`` and the runner's largest batch (``DEFAULT_MAX_BATCH`` when unbounded), each padded with zeros up
    to its smallest batch (a static-batch artefact, a TensorRT profile starting above 1) and the padding dropped.
    ``infer`` replaces ``runner.infer`` for each chunk (a timed call). The one chunking of the toolkit: pipeline,
    engine verification, parity and Q/DQ accuracy use it."""
    infer = infer or runner.infer
    top = runner.max_batch or DEFAULT_MAX_BATCH
    limit = min(limit, top) if limit else top
    minimum = runner.min_batch or 1
    outputs = []
    for start in range(0, len(batch), limit):
        chunk = batch[start:start + limit]
        count = len(chunk)
        if count < minimum:
            chunk = np.concatenate([chunk, np.zeros((minimum - count,) + chunk.shape[1:], chunk.dtype)])
        outputs.append(infer(chunk)[:count])
    return np.concatenate(outputs)


class RunnerError(GoatPoseError):
    """A runner used wrongly: inactive, or given a batch it cannot take."""


class Runner:
    """Base of all runners: one artefact, one contract, ``infer`` between ``__enter__`` and ``__exit__``."""

    backend = "base"
    #: numeric precision the artefact runs at: "fp32", "fp16" or "int8" (a TensorRT engine's from its sidecar)
    precision = "fp32"
    #: the model's complexity record as ``goatpose export`` stores it (``models.complexity.complexity_record``:
    #: params, conv macs, gflops, the paper's figures), None when the artefact records none
    complexity = None  # type: Optional[Dict[str, Any]]

    def __init__(self, path: str):
        self.path = path
        self.contract = None  # type: Optional[ModelContract]
        self.input_shape = None  # type: Optional[Tuple]  # [N, C, H, W] of a contract-less model, None dims dynamic
        self.max_batch = None  # type: Optional[int]
        self.min_batch = 1
        self.is_active = False
        #: seconds per device stage of the last ``infer`` ({"copy_in", "infer", "copy_out"}) when the backend can
        #: split its call (TensorRT, with CUDA events); None otherwise
        self.last_stages = None  # type: Optional[dict]

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.deactivate()

    def activate(self) -> None:
        if not self.is_active:
            self._activate()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self.is_active = False
            self._deactivate()

    def pose_contract(self) -> ModelContract:
        """The model contract, for whoever needs a pose model (the pipeline): an artefact without one is refused in
        one line."""
        if self.contract is None:
            raise ContractError("{} is not a pose model (no model contract)".format(self.path))
        return self.contract

    def description(self) -> Dict[str, Any]:
        """What the artefact is, JSON-ready (``goatpose bench`` records it): file, backend, model, input size (H, W),
        precision, complexity; a backend adds what is its own (onnxruntime: the providers)."""
        contract = self.contract
        size = contract.input_size if contract is not None else (self.input_shape or (None,) * 4)[2:]
        return {"artefact": os.path.basename(self.path), "path": self.path, "backend": self.backend,
                "model": contract.name if contract is not None else None, "input_size": list(size),
                "precision": self.precision, "complexity": self.complexity}

    def expected_chw(self) -> Tuple:
        """(C, H, W) the model takes: from the contract, else from the backend (None for a dynamic size)."""
        if self.contract is not None:
            return (3,) + tuple(self.contract.input_size)
        return tuple(self.input_shape[1:])

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Heatmaps [N, K, h, w] float32 for a network-input batch [N, 3, H, W] float32 (see the contract).

        A contract-less model (a detector) returns its first output as it is."""
        if not self.is_active:
            raise RunnerError("{} runner for {} is not active: use it inside `with`".format(self.backend, self.path))
        expected = self.expected_chw()
        if batch.ndim != 4 or any(e is not None and e != d for e, d in zip(expected, batch.shape[1:])):
            raise RunnerError("{} expects a batch [N, {}], got {}".format(
                self.path, ", ".join("?" if e is None else str(e) for e in expected), list(batch.shape)))
        if batch.dtype != np.float32:
            raise RunnerError("{} expects float32 input, got {}".format(self.path, batch.dtype))
        if not (self.min_batch <= batch.shape[0] <= (self.max_batch or batch.shape[0])):
            raise RunnerError("batch of {} is outside {}'s profile {}..{}".format(
                batch.shape[0], self.path, self.min_batch, self.max_batch or "any"))
        return self._infer(np.ascontiguousarray(batch))

    def synchronize(self) -> None:
        """Block until the device has finished the work of the last ``infer`` (benchmarks call it)."""

    # Parallel workers (the video engine's pose pool): each worker thread owns one runner.
    def default_workers(self) -> int:
        """How many workers of this artefact run best side by side here (measured per backend, see docs/video.md):
        1 unless the backend says otherwise."""
        return 1

    def worker_threads(self, workers: int) -> Optional[int]:
        """CPU threads per worker when ``workers`` run side by side (None: the backend's default)."""
        return None

    def spawn(self, threads: Optional[int] = None) -> "Runner":
        """Another, inactive runner of the same artefact for another worker thread: its own session or execution
        context, stream and buffers; ``threads`` CPU threads where the backend takes a count."""
        raise NotImplementedError

    # Backend hooks.
    def _activate(self) -> None:
        raise NotImplementedError

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError
