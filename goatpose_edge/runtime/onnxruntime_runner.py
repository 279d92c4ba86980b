"""onnxruntime runner: CUDA when the installed onnxruntime has it, else CPU; any providers on request (TensorRT's
execution provider builds its engines on the first run, so it is used only when asked for)."""

import os
from typing import Optional, Sequence

import numpy as np

from goatpose_edge.artefact.contract import METADATA_KEY
from goatpose_edge.artefact.onnx_meta import read_complexity, read_contract, read_metadata
from goatpose_edge.errors import DependencyError
from goatpose_edge.runtime.base import Runner


class OnnxRuntimeRunner(Runner):
    """Runs an ``.onnx`` with onnxruntime; contract and complexity from its metadata (``goatpose export``), no
    contract for a graph without one (a detector)."""

    backend = "onnxruntime"

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
        super().__init__(path)
        # a damaged contract entry is an error; a missing one means the graph is not a pose model
        self.contract = read_contract(path) if METADATA_KEY in read_metadata(path) else None
        self.complexity = read_complexity(path)
        self.providers = list(providers) if providers else None
        self.requested_providers = self.providers
        self.threads = threads
        self.session = None

    def _cpu_only(self) -> bool:
        if self.providers is not None:
            return self.providers == ["CPUExecutionProvider"]
        try:
            import onnxruntime
        except ImportError:
            return True
        return "CUDAExecutionProvider" not in onnxruntime.get_available_providers()

    def default_workers(self) -> int:
        """On a CPU one single-thread session per core: on 2 cores two sessions x 1 thread ran GoatPose-BL at 21.0
        persons/s model-only against 19.5 for one session x 2 threads (benchmarks/cpu-stream.md); on CUDA one."""
        return max(1, os.cpu_count() or 1) if self._cpu_only() else 1

    def worker_threads(self, workers: int) -> Optional[int]:
        return max(1, (os.cpu_count() or 1) // max(1, workers)) if self._cpu_only() else None

    def spawn(self, threads: Optional[int] = None) -> "OnnxRuntimeRunner":
        return OnnxRuntimeRunner(self.path, self.requested_providers, threads or self.threads)

    def description(self):
        return dict(super().description(), providers=list(self.providers or []))

    def _activate(self) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise DependencyError("running {} needs onnxruntime: pip install onnxruntime".format(self.path)) from exc
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        available = onnxruntime.get_available_providers()
        if self.providers is None:
            self.providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        missing = [p for p in self.providers if p not in available]
        if missing:
            raise DependencyError("onnxruntime here has no {} (available: {})".format(
                ", ".join(missing), ", ".join(available)))
        self.session = onnxruntime.InferenceSession(self.path, options, providers=self.providers)
        shape = [d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape]
        self.input_shape = tuple(shape)
        if shape and shape[0] is not None:  # exported with a static batch
            self.min_batch = self.max_batch = shape[0]
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def _deactivate(self) -> None:
        self.session = None
