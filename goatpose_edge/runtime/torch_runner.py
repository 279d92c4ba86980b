"""PyTorch runner (host side): a checkpoint through ``goatpose_edge.models``; torch is imported on activation only."""

import copy
from typing import Any, Dict, Optional

import numpy as np

from goatpose_edge.errors import DependencyError
from goatpose_edge.runtime.base import Runner


class TorchRunner(Runner):
    """Runs a ``.pth`` checkpoint in its deploy form on the CPU (or ``device``)."""

    backend = "torch"

    def __init__(self, path: str, model_name: Optional[str] = None, device: str = "cpu", trusted: bool = False,
                 threads: Optional[int] = None):
        super().__init__(path)
        try:
            from goatpose_edge.models import load_checkpoint
        except ImportError as exc:
            raise DependencyError("running {} needs PyTorch: pip install 'goatpose-edge[host]'".format(path)) from exc
        self.model = load_checkpoint(path, model_name, deploy=True, trusted=trusted)
        self.contract = self.model.contract
        self.device = device
        self.threads = threads
        self._complexity = None  # type: Optional[Dict[str, Any]]

    @property
    def complexity(self) -> Dict[str, Any]:
        """The record ``goatpose export`` would store for this checkpoint's model, measured on first use (seconds):
        a fresh build of its variant, since measuring moves a model to the meta device and the deploy form has NAM
        folded in (the record counts the trained form's parameters, as ``goatpose info`` does)."""
        if self._complexity is None:
            from goatpose_edge.models import build_model
            from goatpose_edge.models.complexity import complexity_record, measure

            variant = self.model.variant
            self._complexity = complexity_record(measure(variant, build_model(variant.name)))
        return self._complexity

    def spawn(self, threads: Optional[int] = None) -> "TorchRunner":
        """A runner sharing this one's model (inference under no_grad is thread-safe); torch's thread count is
        process-wide, so ``threads`` applies to all."""
        clone = copy.copy(self)
        clone.is_active, clone.last_stages = False, None
        clone.threads = threads or self.threads
        return clone

    def _activate(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self.model.to(self.device)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            heatmaps = self.model(torch.from_numpy(batch).to(self.device))
        return heatmaps.cpu().numpy()

    def synchronize(self) -> None:
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def _deactivate(self) -> None:
        self.model.to("cpu")
