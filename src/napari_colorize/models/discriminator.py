"""Multi-scale PatchGAN discriminators (pix2pixHD) conditioned on L, for the ``gan`` model.

Each :class:`PatchDiscriminator` is pix2pix's PatchGAN as pix2pixHD builds it:
4x4 convs with padding 2, ``n_layers`` of them with stride 2 (channels
``width, 2 width, 4 width, ...``, capped at ``8 width``), one more with stride
1, and a last 4x4 conv to one channel: a map of real/fake scores, each seeing a
patch of the input (70x70 pixels for ``n_layers=3``). LeakyReLU(0.2)
everywhere; no normalisation on the first conv.

:class:`MultiScaleDiscriminator` runs ``num_scales`` of them on the input at
full, 1/2, 1/4, ... resolution, downsampling with a 3x3 average pool of
stride 2 (``count_include_pad=False``), as pix2pixHD does: the coarse ones judge
global colour consistency, the fine ones local texture.

The input is ``concat(L, ab)`` (conditional GAN: the discriminator judges
whether ab is a plausible colouring *of this L*). ``forward`` returns, for
each scale, the list of every layer's output; the last entry is the score
map, the others are the features of the feature-matching loss.

Spectral normalisation (Miyato et al. 2018) on every conv by default, with no
other normalisation (``norm="none"``), as in SAGAN's discriminator; pix2pixHD's
instance norm is available through ``norm``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .gan import checkpointed, sn_conv

__all__ = [
    "DiscriminatorConfig",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
]

_NORMS = ("none", "instance", "batch", "group")


@dataclass
class DiscriminatorConfig:
    """Configuration of :class:`MultiScaleDiscriminator`.

    Parameters
    ----------
    in_channels : int
        Channels of the judged image: 3 for L + ab.
    width : int
        Channels of the first conv (``ndf``; 64 in pix2pixHD).
    n_layers : int
        Stride-2 convs per discriminator (3 in pix2pixHD).
    num_scales : int
        Discriminators, at full, 1/2, 1/4, ... resolution (3 in pix2pixHD).
    norm : {"none", "instance", "batch", "group"}
        Normalisation after every conv but the first and the last.
    spectral_norm : bool
        Spectral normalisation of every conv.
    """

    in_channels: int = 3
    width: int = 64
    n_layers: int = 3
    num_scales: int = 3
    norm: str = "none"
    spectral_norm: bool = True

    def __post_init__(self):
        for name in ("in_channels", "width", "n_layers", "num_scales"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DiscriminatorConfig.{name} must be >= 1")
        if self.norm not in _NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; use one of {', '.join(_NORMS)}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "group":
        return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if c % g == 0), c)
    return nn.Identity()


class PatchDiscriminator(nn.Module):
    """pix2pix/pix2pixHD PatchGAN: ``forward(x) -> [feature_1, ..., score_map]``."""

    def __init__(self, c_in: int, width: int, n_layers: int, norm: str, sn: bool):
        super().__init__()
        kw, pad = 4, math.ceil((4 - 1) / 2)  # pix2pixHD's padding: 2
        layers = [nn.Sequential(sn_conv(c_in, width, kw, 2, sn=sn, padding=pad), _lrelu())]
        c = width
        for i in range(1, n_layers + 1):
            c_next = min(c * 2, width * 8)
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(
                    sn_conv(c, c_next, kw, stride, sn=sn, padding=pad, bias=norm == "none"),
                    _norm(norm, c_next),
                    _lrelu(),
                )
            )
            c = c_next
        layers.append(nn.Sequential(sn_conv(c, 1, kw, 1, sn=sn, padding=pad)))
        self.layers = nn.ModuleList(layers)
        self.gradient_checkpointing = False

    def forward(self, x) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = checkpointed(layer, x)
            else:
                x = layer(x)
            feats.append(x)
        return feats


def _lrelu():
    return nn.LeakyReLU(0.2, inplace=True)


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on L + ab at full, 1/2, 1/4, ... resolution.

    ``forward(l_net (N,1,H,W), ab_net (N,2,H,W))`` returns a list (one entry per
    scale, full resolution first) of lists of layer outputs, the score map last.
    """

    def __init__(self, config: DiscriminatorConfig | None = None):
        super().__init__()
        self.config = cfg = config or DiscriminatorConfig()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                cfg.in_channels, cfg.width, cfg.n_layers, cfg.norm, cfg.spectral_norm
            )
            for _ in range(cfg.num_scales)
        )

    def set_gradient_checkpointing(self, enabled: bool = True) -> MultiScaleDiscriminator:
        """Recompute each layer's activations in backward instead of storing them."""
        for d in self.discriminators:
            d.gradient_checkpointing = bool(enabled)
        return self

    def forward(self, l_net: torch.Tensor, ab_net: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([l_net, ab_net.to(l_net.dtype)], dim=1)
        if x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"the discriminator takes {self.config.in_channels} channels (L + ab), "
                f"got {x.shape[1]}"
            )
        outs = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
