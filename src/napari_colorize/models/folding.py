"""Networks prepared for inference: BatchNorm folded, equivalent layers, fused calls.

:func:`prepare_for_inference` is what the Colorizer runs a network through:
BatchNorm folded into the convolution before it (:func:`fold_batchnorm`), each
module that knows a cheaper equivalent of itself in evaluation swapped for it
(its ``inference_form()``, e.g. a U-Net decoder stage that projects before it
upsamples) and, for the CPU, each convolution + ReLU made one oneDNN call
(:func:`.fused_conv.fuse_conv_relu`).

In evaluation mode a BatchNorm is an affine map per channel,
``y = (x - mean) / sqrt(var + eps) * weight + bias``; after a convolution it
can be folded into the convolution's weights and bias. The folded network
computes the same function (to float rounding) with one pass over the
activations fewer per layer, which matters most at full resolution where the
layers are memory-bound (see docs/benchmarks.md, full resolution).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .fused_conv import conv_relu_pairs, fuse_conv_relu, fused_conv_available

__all__ = ["count_foldable", "fold_batchnorm", "prepare_for_inference"]


def _pairs(model: nn.Module):
    """(container, conv name, norm name) for every Conv2d directly followed by a BatchNorm2d."""
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = container._modules[first], container._modules[second]
            if (
                type(conv) is nn.Conv2d
                and type(norm) is nn.BatchNorm2d
                and norm.running_mean is not None
                and norm.num_features == conv.out_channels
            ):
                yield container, first, second


def count_foldable(model: nn.Module) -> int:
    """How many BatchNorm layers :func:`fold_batchnorm` would fold."""
    return sum(1 for _ in _pairs(model))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for inference, each Conv2d + BatchNorm2d pair folded into one Conv2d.

    Only pairs that follow each other in an ``nn.Sequential`` (e.g.
    :class:`~napari_colorize.models.blocks.ConvNormAct`) are folded, so the
    forward pass is known to apply them in that order; the BatchNorm becomes
    an ``nn.Identity``. ``model`` itself is left as it is.

    Parameters
    ----------
    model : torch.nn.Module
        A network (put in evaluation mode in the copy).

    Returns
    -------
    torch.nn.Module
        The folded copy in evaluation mode, or ``model`` itself (in evaluation
        mode) when there is nothing to fold. Not meant for training or saving:
        its state dict differs from the original's.
    """
    if count_foldable(model) == 0:
        return model.eval()
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for container, first, second in list(_pairs(folded)):
            conv = container._modules[first]
            container._modules[first] = fuse_conv_bn_eval(conv, container._modules[second])
            container._modules[second] = nn.Identity()
    return folded


def _inference_form(module: nn.Module) -> nn.Module:
    """``module.inference_form()`` where it defines one, else ``module``."""
    form = getattr(module, "inference_form", None)
    return form() if callable(form) else module


def _swap_inference_forms(model: nn.Module) -> nn.Module:
    """``model`` with every submodule that has an ``inference_form()`` replaced by it."""
    for container in list(model.modules()):
        for name, child in list(container._modules.items()):
            if child is not None:
                container._modules[name] = _inference_form(child)
    return _inference_form(model)


def _changes(model: nn.Module, cpu: bool) -> bool:
    """Whether :func:`prepare_for_inference` would change anything in ``model``."""
    if count_foldable(model) or any(_inference_form(m) is not m for m in model.modules()):
        return True
    return cpu and fused_conv_available() and any(True for _ in conv_relu_pairs(model))


def prepare_for_inference(model: nn.Module, device=None) -> nn.Module:
    """``model`` made to compute the same function faster, for inference only.

    BatchNorm folded (:func:`fold_batchnorm`), submodules swapped for their
    ``inference_form()`` where they define one, and on the CPU each
    convolution + ReLU fused into one call (:func:`.fused_conv.fuse_conv_relu`).
    The outputs match the original's to float rounding (tests/models/test_folding.py).

    Parameters
    ----------
    model : torch.nn.Module
        A network; it is left as it is.
    device : str or torch.device, optional
        Where the network will run (default: where its parameters are). Calls
        are fused only for the CPU.

    Returns
    -------
    torch.nn.Module
        A prepared copy in evaluation mode (not for training or saving: its
        state dict differs from the original's), or ``model`` itself, put in
        evaluation mode, where nothing applies.
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
    cpu = torch.device(device).type == "cpu"
    if not _changes(model, cpu):
        return model.eval()
    prepared = fold_batchnorm(model)
    if prepared is model:
        prepared = copy.deepcopy(model).eval()
    prepared = _swap_inference_forms(prepared).eval()
    if cpu:
        fuse_conv_relu(prepared)
    return prepared
