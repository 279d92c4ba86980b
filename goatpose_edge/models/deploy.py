"""Inference-only rewrites, written once: any submodule with a ``deploy_form()`` is swapped for what it returns.

Today that is NAM (BN and the |gamma|-weights folded into one scale and shift). BatchNorm-into-conv folding is left
to the exporter (TorchScript's ONNX export folds it in eval mode, onnx-simplifier cleans up the rest).
"""

from torch import nn


def to_deploy(model: nn.Module) -> nn.Module:
    """Replace, in place, every submodule that has ``deploy_form()``; returns ``model`` in eval mode.

    The result computes the same function as ``model.eval()`` but can no longer be trained or load checkpoints.
    """
    model.eval()
    for name, child in model.named_children():
        if hasattr(child, "deploy_form"):
            setattr(model, name, child.deploy_form().eval())
        else:
            to_deploy(child)
    return model
