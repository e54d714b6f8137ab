"""Convolution and ReLU in one oneDNN call, for inference on the CPU.

In eager PyTorch a ``Conv2d`` followed by a ``ReLU`` is two passes over the
activations; at full resolution, where a 16-channel layer is as much memory
traffic as arithmetic, the second pass costs about a tenth of the layer. oneDNN
(which runs PyTorch's CPU convolutions) applies the ReLU while the output is
still in cache when asked through ``torch.ops.mkldnn._convolution_pointwise``,
the operator ``torch.compile`` itself emits for this pattern, without the
compile. :func:`fuse_conv_relu` swaps such pairs for :class:`FusedConv2d`, which
falls back to the two plain calls wherever the fused one does not apply (other
devices, gradients, a torch built without oneDNN). Under CPU autocast it runs in
the autocast dtype, as the plain convolution would.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FusedConv2d",
    "conv_relu_pairs",
    "fuse_conv_relu",
    "fused_conv_available",
    "onednn_bf16_available",
]


def _pointwise():
    return torch.ops.mkldnn._convolution_pointwise


@functools.cache
def fused_conv_available() -> bool:
    """Whether this torch offers oneDNN's fused convolution on the CPU (checked once)."""
    try:
        x, w = torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3)
        with torch.no_grad():
            y = _pointwise()(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        return tuple(y.shape) == (1, 1, 4, 4) and float(y[0, 0, 1, 1]) == 9.0
    except Exception:  # no mkldnn, or an operator signature this code does not know
        return False


@functools.cache
def onednn_bf16_available() -> bool:
    """Whether oneDNN computes bf16 convolutions on this CPU (AVX-512 or newer; checked once).

    Elsewhere torch's own bf16 convolution runs them (slowly), as for a plain ``Conv2d``.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # a torch without the check
        return False


def _cpu_autocast_dtype():
    """The CPU autocast dtype in effect, or None."""
    try:
        enabled = torch.is_autocast_enabled("cpu")
        dtype = torch.get_autocast_dtype("cpu")
    except TypeError:  # torch < 2.4
        enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    return dtype if enabled else None


class FusedConv2d(nn.Module):
    """A zero-padded ``Conv2d``, optionally followed by a ReLU, as one oneDNN call on the CPU.

    Parameters
    ----------
    conv : torch.nn.Conv2d
        The convolution (kept as ``self.conv``: its weights are the module's own).
    relu : bool
        Whether a ReLU follows.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool = True):
        super().__init__()
        self.conv = conv
        self.relu = bool(relu)
        self._cast = None  # (dtype, weight version, weight, bias) for autocast

    def _weights(self, dtype):
        weight, bias = self.conv.weight, self.conv.bias
        if dtype == weight.dtype:
            return weight, bias
        key = (dtype, weight._version, weight.data_ptr())
        if self._cast is None or self._cast[0] != key:
            cast_bias = None if bias is None else bias.to(dtype)
            self._cast = (key, weight.detach().to(dtype), cast_bias)
        return self._cast[1], self._cast[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        dtype = _cpu_autocast_dtype() or conv.weight.dtype
        plain = (
            x.device.type != "cpu"
            or (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
            or not fused_conv_available()
            or (dtype == torch.bfloat16 and not onednn_bf16_available())
        )
        if plain:
            y = conv(x)
            return F.relu(y, inplace=True) if self.relu else y
        weight, bias = self._weights(dtype)
        return _pointwise()(
            x.to(dtype), weight, bias, list(conv.padding), list(conv.stride),
            list(conv.dilation), conv.groups, "relu" if self.relu else "none", [], "",
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"relu={self.relu}"


def _fusable(conv) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and conv.weight.dtype == torch.float32
    )


def conv_relu_pairs(model: nn.Module):
    """``(container, conv name, relu name)`` for each ``Conv2d`` then ``ReLU`` in a Sequential.

    Identities between the two (left by :func:`.folding.fold_batchnorm`) are skipped.
    """
    for container in list(model.modules()):
        if not isinstance(container, nn.Sequential):
            continue
        layers = list(container._modules.items())
        for i, (name, conv) in enumerate(layers):
            if not _fusable(conv):
                continue
            after = next(
                ((n, m) for n, m in layers[i + 1 :] if not isinstance(m, nn.Identity)), None
            )
            if after is not None and type(after[1]) is nn.ReLU:
                yield container, name, after[0]


def fuse_conv_relu(model: nn.Module) -> int:
    """Replace, in place, each ``Conv2d`` followed by a ``ReLU`` (see :func:`conv_relu_pairs`).

    The convolution becomes a :class:`FusedConv2d` and the ReLU an
    ``nn.Identity``. For inference copies only: call it on a model you own.

    Parameters
    ----------
    model : torch.nn.Module
        The network, changed in place.

    Returns
    -------
    int
        How many pairs were fused (0 where this torch cannot fuse them).
    """
    if not fused_conv_available():
        return 0
    pairs = list(conv_relu_pairs(model))
    for container, conv_name, relu_name in pairs:
        container._modules[conv_name] = FusedConv2d(container._modules[conv_name], relu=True)
        container._modules[relu_name] = nn.Identity()
    return len(pairs)
