"""Losses on predicted vs true ab, both scaled by ``color.ab_to_net`` (ab / 128).

Why not only MSE: where a colour is ambiguous from L (a hat may be red or
blue), the mean squared error is minimised by the average of the candidates, a
greyish brown. Losses that grow linearly with the error are minimised by a
median instead, which stays on one of the candidates more often:

``"mse"``
    The originating project's loss.
``"l1"``
    Per-channel absolute error (median of a and of b separately).
``"smooth_l1"``
    Huber: quadratic below 0.05 (about 6 ab units), linear above.
``"delta_e"``
    The Euclidean ab distance per pixel, i.e. CIE76 colour difference at equal L
    (its minimiser is the geometric median in the ab plane): the loss that
    measures what a viewer sees, in the same units as the evaluation's CIEDE2000.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "delta_e_loss", "make_loss"]

_SMOOTH_L1_BETA = 0.05
_EPS = 1e-6


def delta_e_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel Euclidean distance in ab (net scale; x128 for Lab units)."""
    return torch.sqrt(((pred - target) ** 2).sum(dim=1) + _EPS).mean()


def _smooth_l1(pred, target):
    return F.smooth_l1_loss(pred, target, beta=_SMOOTH_L1_BETA)


LOSSES = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "smooth_l1": _smooth_l1,
    "delta_e": delta_e_loss,
}


def make_loss(name: str):
    """The loss function called ``name`` (see :data:`LOSSES`): ``fn(pred, target) -> scalar``."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
