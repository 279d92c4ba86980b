"""From a PyTorch variant to a TensorRT-ready ONNX file: export, clean-up, lint, parity (host side).

Torch and onnx are imported inside the functions that need them, so ``goatpose lint`` and the parity helpers load
without torch.
"""

from goatpose_edge.export.lint import LintError, LintReport, lint
from goatpose_edge.export.onnx_export import ExportResult, default_output_path, export_onnx
from goatpose_edge.export.parity import ParityError, ParityReport, verify_runners

__all__ = ["ExportResult", "LintError", "LintReport", "ParityError", "ParityReport", "default_output_path",
           "export_onnx", "lint", "verify_runners"]
