"""Building blocks shared by the colorization networks: padding, conv blocks, layer specs.

Every network here is fully convolutional. Inputs whose height or width is not
a multiple of the network's downsampling factor are padded (edge replication,
so tiny images work too) and the output is cropped back, see :func:`pad_to_multiple`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvNormAct",
    "build_sequential",
    "count_macs",
    "crop_to",
    "make_norm",
    "pad_to_multiple",
    "parse_layer",
]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (N,C,H,W) at the bottom/right to a multiple of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop_to`.
    Edge replication rather than zeros: a zero border would read as black (L=0 maps
    to -1, not 0) and tint the image edges.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop ``x`` (N,C,H,W) back to ``size`` = (H, W) taken from the top left."""
    return x[..., : size[0], : size[1]]


def make_norm(kind: str, channels: int) -> nn.Module:
    """A normalisation layer: ``"batch"``, ``"group"`` (8 groups or fewer) or ``"none"``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use 'batch', 'group' or 'none'")


class ConvNormAct(nn.Sequential):
    """3x3 (or ``kernel``) conv, optional normalisation, ReLU."""

    def __init__(self, c_in, c_out, *, stride=1, kernel=3, norm="none", act=True):
        layers = [
            nn.Conv2d(
                c_in,
                c_out,
                kernel,
                stride=stride,
                padding=kernel // 2,
                bias=norm in ("none", "group") or not act,
            )
        ]
        if norm != "none":
            layers.append(make_norm(norm, c_out))
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def parse_layer(spec: str) -> tuple[str, int, int]:
    """Parse one layer of a sequential spec.

    ``"64"`` is a 3x3 conv to 64 channels with ReLU, ``"64/2"`` the same with
    stride 2, ``"2t"`` a 3x3 conv with tanh, ``"up"`` a x2 nearest upsampling.

    Returns
    -------
    (kind, channels, stride) with kind one of ``"conv"``, ``"tanh"``, ``"up"``.
    """
    s = str(spec).strip().lower()
    if s == "up":
        return "up", 0, 1
    stride = 1
    if "/" in s:
        s, st = s.split("/", 1)
        stride = int(st)
    kind = "conv"
    if s.endswith("t"):
        kind, s = "tanh", s[:-1]
    try:
        channels = int(s)
    except ValueError:
        raise ValueError(
            f"bad layer spec {spec!r}: use 'C' (3x3 conv+ReLU), 'C/2' (stride 2), "
            "'Ct' (conv+tanh) or 'up'"
        ) from None
    return kind, channels, stride


def build_sequential(specs, c_in: int, norm: str = "none") -> tuple[nn.Sequential, int, int]:
    """Build an ``nn.Sequential`` from layer specs (see :func:`parse_layer`).

    Returns the module, its output channels and its total downsampling factor
    (product of strides; upsamplings do not reduce it, as the input must still
    be divisible by it).
    """
    layers: list[nn.Module] = []
    c = c_in
    down = 1
    for spec in specs:
        kind, channels, stride = parse_layer(spec)
        if kind == "up":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif kind == "tanh":
            layers.append(nn.Conv2d(c, channels, 3, stride=stride, padding=1))
            layers.append(nn.Tanh())
            c = channels
        else:
            layers.append(ConvNormAct(c, channels, stride=stride, norm=norm))
            c = channels
        down *= stride
    return nn.Sequential(*layers), c, down


def count_macs(model: nn.Module, size=(256, 256)) -> int:
    """Multiply-accumulates of the conv layers for one ``size`` input (FLOPs ~ 2x this).

    A quick estimate for keeping inference cost in check; it counts Conv2d only.
    """
    total = 0

    def hook(mod, _inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, *size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
