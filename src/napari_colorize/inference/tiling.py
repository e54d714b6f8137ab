"""Overlapping tiles of a working-size plane, cross-faded so that the seams never show.

Neighbouring tiles overlap; they cross-fade with a raised cosine over the middle
of the overlap, and the outer quarter on each side is dropped, so pixels whose
receptive field reaches past a tile's edge are never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Tiling", "axis_weights", "tile_starts"]


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced starts of ``tile``-long tiles covering ``n``, overlapping >= ``overlap``."""
    if n <= tile:
        return [0]
    k = math.ceil((n - overlap) / (tile - overlap))
    return [round(i * (n - tile) / (k - 1)) for i in range(k)]


def axis_weights(n: int, tile: int, overlap: int) -> list[tuple[int, np.ndarray]]:
    """``(start, weight)`` per tile along one axis; the weights sum to 1 at every position.

    Neighbours cross-fade with a raised cosine over the middle of their overlap;
    the outer quarter of the overlap on each side gets weight 0, so pixels whose
    receptive field reaches past the tile edge are never used.
    """
    starts = tile_starts(n, tile, overlap)
    size = min(n, tile)
    weights = [np.ones(size, dtype=np.float32) for _ in starts]
    fade = max(1, overlap - 2 * (overlap // 4))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade, dtype=np.float64) + 0.5) / fade)
    for i in range(len(starts) - 1):
        a, b = starts[i + 1], starts[i] + size  # the overlap of tiles i and i+1
        lo = (a + b) // 2 - fade // 2
        left, right = weights[i], weights[i + 1]
        # tile i fades out over [lo, lo + fade), tile i + 1 fades in
        left[lo - starts[i] : lo - starts[i] + fade] *= (1.0 - ramp).astype(np.float32)
        left[lo - starts[i] + fade :] = 0.0
        right[: lo - a] = 0.0
        right[lo - a : lo - a + fade] *= ramp.astype(np.float32)
    return list(zip(starts, weights))


@dataclass
class Tiling:
    """Tiles of one working-size plane, all of the same size so they batch.

    A tile's weight is the outer product of its row and column weights
    (:func:`axis_weights`), which sum to 1 at every position along each axis:
    the weighted tiles add up to the plane with no normalisation, and no
    plane-sized weight map is ever held.
    """

    shape: tuple[int, int]
    size: tuple[int, int]
    tiles: list[tuple[int, int, Any, Any]]  # (y0, x0, row weights, column weights) or Nones

    @classmethod
    def build(cls, shape, tile, overlap, torch, device):
        h, w = shape
        if h <= tile and w <= tile:
            return cls(shape, (h, w), [(0, 0, None, None)])
        overlap = max(0, min(overlap, tile // 2))
        rows = [(y0, torch.from_numpy(wy).to(device)) for y0, wy in axis_weights(h, tile, overlap)]
        cols = [(x0, torch.from_numpy(wx).to(device)) for x0, wx in axis_weights(w, tile, overlap)]
        tiles = [(y0, x0, wy, wx) for y0, wy in rows for x0, wx in cols]
        return cls(shape, (min(h, tile), min(w, tile)), tiles)

    def add_weighted(self, acc, index: int, prediction) -> None:
        """Add tile ``index``'s weighted ``prediction`` (C, th, tw) into ``acc`` (C, H, W).

        ``prediction`` is scaled in place.
        """
        y0, x0, wy, wx = self.tiles[index]
        th, tw = self.size
        prediction.mul_(wy[:, None]).mul_(wx)
        acc[:, y0 : y0 + th, x0 : x0 + tw] += prediction
