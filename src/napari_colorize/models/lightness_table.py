"""The lightness lookup table: the mean ab of the training pixels per lightness bin.

The simplest colorizer that learns anything, ``ab = table[L]``, and the floor a
trained network must beat. Models whose config has ``lightness_table=True``
(alpha, beta, gan) predict ``table(L) + residual(L)``: the table is a
:class:`LightnessTable` buffer (stored in the checkpoint) fitted once to the
training data, and the network's last layer starts at zero, so that at step 0
the model *is* the table and training only adds what it can learn on top. Its
buffer ``residual_scale`` (1 while training) lets the trainer shrink a residual
that does worse than the table on validation (see
:func:`napari_colorize.training.baseline.shrink_residual`).

- :class:`LightnessTableFit` accumulates sums and counts of ab per bin over
  any number of ``(l_net, ab_net)`` arrays (numpy, one pass), and
  :meth:`LightnessTableFit.table` gives the table, empty bins interpolated
  from their neighbours;
- :class:`LightnessTable` applies it as a torch op (linear interpolation
  between the bin centres) on the network's L input.

Both work in the networks' units (:func:`napari_colorize.color.l_to_net`,
:func:`napari_colorize.color.ab_to_net`): L in [-1, 1], ab / 128.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = [
    "TABLE_BINS",
    "LightnessTable",
    "LightnessTableFit",
    "add_table",
    "fit_lightness_table",
    "zero_last_conv",
]

#: Lightness bins of a table: one per unit of L in [0, 100].
TABLE_BINS = 101


def _bin_index(l_net: np.ndarray, bins: int) -> np.ndarray:
    """Nearest bin of each ``l_net`` value (clipped to [-1, 1])."""
    position = (np.clip(l_net, -1.0, 1.0) + 1.0) * (0.5 * (bins - 1))
    return np.rint(position).astype(np.intp)


class LightnessTableFit:
    """Sums and counts of ab per lightness bin, filled by :meth:`add`, read by :meth:`table`.

    Parameters
    ----------
    bins : int
        Number of bins over L in [0, 100] (at least 2).
    """

    def __init__(self, bins: int = TABLE_BINS):
        if int(bins) < 2:
            raise ValueError(f"a lightness table needs at least 2 bins, got {bins}")
        self.bins = int(bins)
        self.sums = np.zeros((self.bins, 2), dtype=np.float64)
        self.counts = np.zeros(self.bins, dtype=np.int64)

    def add(self, l_net, ab_net) -> LightnessTableFit:
        """Count the pixels of ``l_net`` ``(..., 1, H, W)`` with their ab ``(..., 2, H, W)``.

        Parameters
        ----------
        l_net, ab_net : array-like (numpy or torch)
            L and ab in the networks' units, the same leading and spatial shape.
            Pixels that are not finite are left out.

        Returns
        -------
        LightnessTableFit
            ``self``, so that calls chain.
        """
        l_net, ab_net = _as_numpy(l_net), _as_numpy(ab_net)
        if l_net.ndim < 3 or l_net.shape[-3] != 1:
            raise ValueError(f"expected L as (..., 1, H, W), got shape {l_net.shape}")
        if ab_net.shape[:-3] != l_net.shape[:-3] or ab_net.shape[-3:] != (2, *l_net.shape[-2:]):
            raise ValueError(
                f"ab must be (..., 2, H, W) matching L {l_net.shape}, got shape {ab_net.shape}"
            )
        lightness = np.moveaxis(l_net, -3, -1).reshape(-1)
        ab = np.moveaxis(ab_net, -3, -1).reshape(-1, 2)
        finite = np.isfinite(lightness) & np.isfinite(ab).all(1)
        lightness, ab = lightness[finite], ab[finite].astype(np.float64)
        index = _bin_index(lightness, self.bins)
        self.counts += np.bincount(index, minlength=self.bins)
        for c in range(2):
            self.sums[:, c] += np.bincount(index, weights=ab[:, c], minlength=self.bins)
        return self

    @property
    def n_pixels(self) -> int:
        """Pixels counted so far."""
        return int(self.counts.sum())

    def table(self) -> np.ndarray:
        """The table ``(bins, 2)`` float32: mean ab per bin, empty bins interpolated.

        Empty bins take the linear interpolation of the nearest non-empty ones
        (beyond the lightest or darkest non-empty bin: its value). With no
        pixels at all the table is gray (zeros).
        """
        filled = self.counts > 0
        table = np.zeros((self.bins, 2), dtype=np.float64)
        if not filled.any():
            return table.astype(np.float32)
        centres = np.arange(self.bins)
        means = self.sums[filled] / self.counts[filled, None]
        for c in range(2):
            table[:, c] = np.interp(centres, centres[filled], means[:, c])
        return table.astype(np.float32)


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().float().cpu().numpy()
    return np.asarray(a, dtype=np.float32)


def fit_lightness_table(l_net, ab_net, *, bins: int = TABLE_BINS) -> np.ndarray:
    """The lightness table ``(bins, 2)`` of one set of pixels (see :class:`LightnessTableFit`)."""
    return LightnessTableFit(bins).add(l_net, ab_net).table()


class LightnessTable(nn.Module):
    """``forward(l_net (N,1,H,W)) -> ab_net (N,2,H,W)``: the table read at each pixel's L.

    Values between bin centres are interpolated linearly. The table is the
    buffer ``table`` ``(bins, 2)`` (in the state dict, so a checkpoint carries
    it); a new one is gray (zeros) until :meth:`set_table`. The buffer
    ``residual_scale`` (a scalar, 1 by default) is how much of a network's
    residual :func:`add_table` keeps.

    Parameters
    ----------
    bins : int
        Number of bins over L in [0, 100].
    """

    def __init__(self, bins: int = TABLE_BINS):
        super().__init__()
        if int(bins) < 2:
            raise ValueError(f"a lightness table needs at least 2 bins, got {bins}")
        self.register_buffer("table", torch.zeros(int(bins), 2))
        self.register_buffer("residual_scale", torch.ones(()))

    @property
    def bins(self) -> int:
        return int(self.table.shape[0])

    @torch.no_grad()
    def set_table(self, table) -> LightnessTable:
        """Replace the table by ``table`` ``(bins, 2)`` in ab_to_net units; returns ``self``."""
        values = torch.as_tensor(np.asarray(table, dtype=np.float32))
        if tuple(values.shape) != tuple(self.table.shape):
            raise ValueError(
                f"the lightness table must have shape {tuple(self.table.shape)} (bins, ab), "
                f"got {tuple(values.shape)}; fit it with LightnessTableFit(bins={self.bins})"
            )
        if not torch.isfinite(values).all():
            raise ValueError("the lightness table holds NaN or infinite values; refit it")
        self.table.copy_(values.to(self.table))
        return self

    def forward(self, l_net: torch.Tensor) -> torch.Tensor:
        """The table's ab (N,2,H,W) for ``l_net`` (N,1,H,W)."""
        if l_net.ndim != 4 or l_net.shape[1] != 1:
            raise ValueError(f"expected L as (N, 1, H, W), got shape {tuple(l_net.shape)}")
        top = self.bins - 1
        position = ((l_net[:, 0].float() + 1.0) * (0.5 * top)).clamp(0.0, float(top))
        low = position.floor().clamp(max=top - 1)
        frac = (position - low).unsqueeze(1)
        low = low.long()
        table = self.table.float()
        below = table[low].permute(0, 3, 1, 2)  # (N, H, W, 2) -> (N, 2, H, W)
        above = table[low + 1].permute(0, 3, 1, 2)
        return below + frac * (above - below)


def add_table(table: LightnessTable | None, l_net, residual: torch.Tensor) -> torch.Tensor:
    """``table(l_net) + s * residual`` clipped to [-1, 1]; ``residual`` without a table.

    ``s`` is the table's ``residual_scale``.

    Raises
    ------
    ValueError
        A model with a table was not given its L input.
    """
    if table is None:
        return residual
    if l_net is None:
        raise ValueError(
            "this model adds a lightness table to its output and needs its L input: "
            "pass lightness= (the padded L that was encoded) to decode()"
        )
    scale = table.residual_scale.float()
    return (table(l_net) + scale * residual.float()).clamp(-1.0, 1.0).to(residual.dtype)


@torch.no_grad()
def zero_last_conv(module: nn.Module) -> nn.Conv2d:
    """Zero the weights and bias of the last ``Conv2d`` of ``module``; returns it.

    A residual on a lightness table starts at zero this way, so that an
    untrained model predicts exactly the table.
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(module).__name__} has no Conv2d layer to start at zero")
    conv = convs[-1]
    if hasattr(conv, "parametrizations"):
        raise ValueError(
            "the last conv is reparametrised (e.g. spectral norm) and cannot start at zero; "
            "use a plain conv for the output of a model with a lightness table"
        )
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv
