"""The ``alpha`` colorizer: a tiny conv encoder-decoder fit to a single image.

As in the originating project's first version: three stride-2 convs down, three
x2 upsamplings back, 3x3 convs with ReLU, tanh ab output, trained on patches of
one photo until it reproduces that photo's colours. Widths scale with
``AlphaConfig.width`` (see :func:`alpha_layers`; ``C/2`` is a stride-2 conv).
With ``lightness_table=True`` it predicts a residual on the lightness lookup
table of its training image (see :mod:`.lightness_table`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .blocks import build_sequential, crop_to, pad_to_multiple
from .lightness_table import LightnessTable, add_table, zero_last_conv

__all__ = ["AlphaColorizer", "AlphaConfig", "alpha_layers"]


@dataclass
class AlphaConfig:
    """Configuration of :class:`AlphaColorizer`.

    Parameters
    ----------
    width : int
        Channels of the first scale; the deeper scales use 2x and 4x. The
        originating project used 8.
    in_channels : int
        1 for L only; more for extra conditioning channels (zeros when absent).
    lightness_table : bool
        Predict ``table(L) + residual``: a :class:`~.lightness_table.LightnessTable`
        (a buffer, fitted to the training data by the trainer) plus the
        network, whose last conv starts at zero (an untrained model predicts the table).
    """

    width: int = 16
    in_channels: int = 1
    lightness_table: bool = False

    def __post_init__(self):
        if self.width < 1 or self.in_channels < 1:
            raise ValueError(
                f"AlphaConfig needs width >= 1 and in_channels >= 1, got {self.width}, "
                f"{self.in_channels}"
            )

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for checkpoint metadata)."""
        return asdict(self)


def alpha_layers(width: int) -> tuple[str, ...]:
    """Layer specs (see :func:`.layers.parse_layer`) of an alpha network of ``width``."""
    w = width
    return (
        f"{w}/2",
        f"{w}",
        f"{2 * w}",
        f"{2 * w}/2",
        f"{4 * w}",
        f"{4 * w}/2",
        "up",
        f"{4 * w}",
        "up",
        f"{2 * w}",
        "up",
        "2t",
    )


class AlphaColorizer(nn.Module):
    """Predict ab from L: ``forward(l (N,1,H,W)) -> ab (N,2,H,W)`` in [-1, 1], any H, W."""

    def __init__(self, config: AlphaConfig | None = None):
        super().__init__()
        self.config = config = config or AlphaConfig()
        self.net, c_out, self.downsampling = build_sequential(
            alpha_layers(config.width), config.in_channels
        )
        assert c_out == 2
        if config.lightness_table:
            self.lightness_table = LightnessTable()
            zero_last_conv(self.net)

    def forward(self, l_net, hints=None):
        """Predict ``ab_to_net(ab)`` (N,2,H,W) from ``l_to_net(L)`` (N,1,H,W)."""
        if l_net.ndim != 4 or l_net.shape[1] != 1:
            raise ValueError(f"expected L as (N, 1, H, W), got shape {tuple(l_net.shape)}")
        extra = self.config.in_channels - 1
        if extra:
            if hints is None:
                hints = l_net.new_zeros(l_net.shape[0], extra, *l_net.shape[-2:])
            l_net = torch.cat([l_net, hints.to(l_net.dtype)], dim=1)
        x, size = pad_to_multiple(l_net, self.downsampling)
        ab = add_table(getattr(self, "lightness_table", None), x[:, :1], self.net(x))
        return crop_to(ab, size)
