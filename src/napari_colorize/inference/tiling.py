"""Overlapping tiles of a working-size plane, aligned and cross-faded so that no seam shows.

Tiles start on multiples of the network's downsampling factor (``align``): a
network that downsamples by 8 computes its deep features on a grid anchored at
its input's corner, so a tile starting at a pixel that is not a multiple of 8
sees a shifted grid and colours differently from the whole image (up to 87 ab
units in a 1000² photograph in 512-px tiles before this). All tiles have one
size, so that they batch, except the last of a row or column, which ends at
the plane's edge, as the whole image does (the network pads both alike).
Neighbours overlap by at least the requested overlap and cross-fade with a
raised cosine in the middle of it; what is left on either side is dropped, so
pixels whose context reaches past a tile's edge are never used (see
:mod:`.context` for how much context a network needs).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Tiling", "axis_tiles"]


def _round_up(value: float, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def axis_tiles(n: int, tile: int, overlap: int, align: int = 1, fade: int | None = None):
    """Tiles along one axis: ``(size, [(start, weight), ...])``.

    Parameters
    ----------
    n : int
        The axis' length.
    tile : int
        The largest tile size.
    overlap : int
        The least overlap of neighbours (rounded up to a multiple of ``align``,
        at most half a tile).
    align : int
        Starts and the size are multiples of this (when there is more than one tile).
    fade : int, optional
        Length of the cross-fade in the middle of each overlap; what is left on
        either side of it is dropped. Default: half the overlap (a quarter dropped
        on each side).

    Returns
    -------
    size : int
        The tiles' common size: the smallest that covers ``n`` with as few
        tiles as ``tile``-long ones need. The last tile is shorter where it
        would reach past ``n``.
    tiles : list of (int, numpy.ndarray)
        Start and float32 weights (the tile's length) of each tile; they sum to
        1 at every position of ``[0, n)``.
    """
    if n <= tile:
        return n, [(0, np.ones(n, dtype=np.float32))]
    align = max(1, int(align))
    longest = max(align, tile // align * align)
    overlap = min(_round_up(max(overlap, 0), align), longest // 2 // align * align)
    count = math.ceil((n - overlap) / (longest - overlap))
    # aligned steps of at least the overlap, so that only neighbours overlap
    step = max(overlap, _round_up((n - overlap) / count, align))
    size = step + overlap
    count = math.ceil((n - overlap) / step)  # rounding the step up may spare a tile
    starts = [i * step for i in range(count)]
    weights = [np.ones(size, dtype=np.float32) for _ in starts]
    if overlap:
        fade = overlap - 2 * (overlap // 4) if fade is None else min(max(1, fade), overlap)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)
        ramp = ramp.astype(np.float32)
        lo = step + (overlap - fade) // 2  # where a tile fades out, from its start
        for left, right in itertools.pairwise(weights):
            left[lo : lo + fade] *= 1.0 - ramp
            left[lo + fade :] = 0.0
            right[: lo - step] = 0.0
            right[lo - step : lo - step + fade] *= ramp
    weights[-1] = weights[-1][: n - starts[-1]]
    return size, list(zip(starts, weights))


@dataclass
class Tiling:
    """Tiles of one working-size plane, all of the same size so they batch.

    A tile's weight is the outer product of its row and column weights
    (:func:`axis_tiles`), which sum to 1 at every position along each axis:
    the weighted tiles add up to the plane with no normalisation, and no
    plane-sized weight map is ever held.
    """

    shape: tuple[int, int]
    size: tuple[int, int]
    tiles: list[tuple[int, int, Any, Any]]  # (y0, x0, row weights, column weights) or Nones

    @classmethod
    def build(cls, shape, tile, overlap, torch, device, align: int = 1, fade=None):
        """Tiles of at most ``tile`` px covering ``shape`` (see :func:`axis_tiles`)."""
        h, w = shape
        if h <= tile and w <= tile:
            return cls(shape, (h, w), [(0, 0, None, None)])
        th, rows = axis_tiles(h, tile, overlap, align, fade)
        tw, cols = axis_tiles(w, tile, overlap, align, fade)
        rows = [(y0, torch.from_numpy(wy).to(device)) for y0, wy in rows]
        cols = [(x0, torch.from_numpy(wx).to(device)) for x0, wx in cols]
        tiles = [(y0, x0, wy, wx) for y0, wy in rows for x0, wx in cols]
        return cls(shape, (th, tw), tiles)

    def tile_shape(self, index: int) -> tuple[int, int]:
        """``(h, w)`` of tile ``index``: :attr:`size`, or less at the plane's bottom and right."""
        wy, wx = self.tiles[index][2:]
        return (self.size[0], self.size[1]) if wy is None else (len(wy), len(wx))

    def crop(self, plane, index: int):
        """Tile ``index`` of ``plane`` (C, H, W)."""
        y0, x0 = self.tiles[index][:2]
        th, tw = self.tile_shape(index)
        return plane[:, y0 : y0 + th, x0 : x0 + tw]

    def add_weighted(self, acc, index: int, prediction) -> None:
        """Add tile ``index``'s weighted ``prediction`` (C, h, w) into ``acc`` (C, H, W).

        ``prediction`` is scaled in place.
        """
        y0, x0, wy, wx = self.tiles[index]
        th, tw = self.tile_shape(index)
        prediction.mul_(wy[:, None]).mul_(wx)
        acc[:, y0 : y0 + th, x0 : x0 + tw] += prediction
