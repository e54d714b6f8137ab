"""Networks prepared for inference: BatchNorm folded into the convolution before it.

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

__all__ = ["count_foldable", "fold_batchnorm"]


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
