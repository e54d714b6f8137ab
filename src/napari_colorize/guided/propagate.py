"""Colour hints spread edge-aware along lightness, alone or as a correction of a prediction.

Hints are maps in the package's hint format (see :mod:`napari_colorize.hints`):
``ab_to_net(ab)`` in channels 0-1 and a [0, 1] mask in channel 2. They are
spread by normalized convolution with the domain transform
(:func:`~napari_colorize.guided.filters.domain_transform`): every pixel takes
the mean of the hints weighted by their geodesic closeness, where a lightness
edge counts as a long way. Used

- alone (the ``propagate`` method): the spread hints are the colours, then a
  guided filter aligns them with lightness edges;
- on top of a prediction (any network, a colour reference): the differences
  between the hints and the prediction at the hinted pixels are spread over a
  shorter range and fade out with geodesic distance, so a hint corrects its
  surroundings and leaves the rest of the image to the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..color import AB_SCALE
from .filters import domain_transform, guided_filter

__all__ = ["HintPropagator"]

#: Below this filtered mask weight a pixel counts as reached by no hint.
_TINY = 1e-20


@dataclass
class HintPropagator:
    """Spread colour hints along lightness.

    Parameters
    ----------
    extent : float
        Spatial extent of the spreading, as a fraction of the plane's longest
        side (geodesic: lightness edges lengthen the way).
    edge : float
        Lightness contrast (in L / 100) that counts as far as ``extent``;
        smaller keeps colours more strictly inside lightness edges.
    correction_extent : float
        Extent of a hint's correction on top of a prediction, as a fraction
        of the longest side.
    smooth_radius : int
        Radius in pixels of the final guided filter (0: none).

    Examples
    --------
    >>> ab = HintPropagator().predict_ab(lightness, hints)  # doctest: +SKIP
    """

    extent: float = 1.0
    edge: float = 0.05
    correction_extent: float = 0.1
    smooth_radius: int = 4

    name = "propagate"

    def prepare(self, scale: float = 1.0) -> None:
        """Nothing to prepare; present so every guided method runs the same way."""

    def predict_ab(self, lightness: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """ab of a plane from its hints alone (gray where there are none).

        Parameters
        ----------
        lightness : numpy.ndarray
            L in [0, 100], (H, W).
        hints : numpy.ndarray, optional
            (H, W, 3) in the package's hint format.

        Returns
        -------
        numpy.ndarray
            float32 (H, W, 2) in Lab units.
        """
        lightness = np.asarray(lightness, dtype=np.float32)
        mask, ab = _split(hints, lightness.shape)
        if mask is None:
            return np.zeros((*lightness.shape, 2), np.float32)
        guide = lightness / 100.0
        sigma = self.extent * max(lightness.shape)
        spread = _normalized(guide, ab, mask, sigma, self.edge)[0]
        return self._smooth(guide, spread)

    def correct(
        self, lightness: np.ndarray, prior_ab: np.ndarray, hints: np.ndarray | None
    ) -> np.ndarray:
        """``prior_ab`` corrected near the hints.

        Parameters
        ----------
        lightness : numpy.ndarray
            L in [0, 100], (H, W).
        prior_ab : numpy.ndarray
            (H, W, 2) in Lab units: a network's or a reference's prediction.
        hints : numpy.ndarray or None
            (H, W, 3) in the package's hint format.

        Returns
        -------
        numpy.ndarray
            float32 (H, W, 2); ``prior_ab`` itself where there are no hints.
        """
        lightness = np.asarray(lightness, dtype=np.float32)
        mask, ab = _split(hints, lightness.shape)
        if mask is None:
            return prior_ab
        prior_ab = np.asarray(prior_ab, dtype=np.float32)
        guide = lightness / 100.0
        sigma = max(1.0, self.correction_extent * max(lightness.shape))
        residual = (ab - prior_ab) * (mask[..., None] > 0)
        spread, weight = _normalized(guide, residual, mask, sigma, self.edge)
        # full strength where a hint's own weight is, fading with geodesic distance
        reach = np.clip(weight / (0.5 * _impulse_peak(sigma, self.edge)), 0.0, 1.0)
        corrected = prior_ab + spread * reach[..., None]
        return self._smooth(guide, corrected, keep=mask > 0, keep_ab=ab)

    def _smooth(self, guide, ab, keep=None, keep_ab=None):
        if self.smooth_radius:
            ab = guided_filter(guide, ab, radius=self.smooth_radius, eps=1e-3)
        if keep is not None:
            ab[keep] = keep_ab[keep]
        return ab.astype(np.float32, copy=False)


def _split(hints, shape):
    """(mask (H, W), ab (H, W, 2) in Lab units), or (None, None) without any hint."""
    if hints is None:
        return None, None
    hints = np.asarray(hints, dtype=np.float32)
    if hints.shape != (*shape, 3):
        raise ValueError(
            f"hints have shape {hints.shape} but the plane is {shape}; "
            "give (H, W, 3) maps in the package's hint format"
        )
    mask = np.clip(hints[..., 2], 0.0, 1.0)
    if not np.any(mask > 0):
        return None, None
    return mask, hints[..., :2] * AB_SCALE


def _normalized(guide, ab, mask, sigma, edge):
    """Normalized convolution of ``ab`` weighted by ``mask``.

    Returns the weighted mean ab (H, W, 2) and the filtered weight (H, W).
    """
    data = np.empty((3, *mask.shape), np.float32)
    data[0] = ab[..., 0] * mask
    data[1] = ab[..., 1] * mask
    data[2] = mask
    data = domain_transform(data, guide, sigma, edge)
    weight = data[2]
    reached = weight > _TINY
    total = float(mask.sum())
    fallback = (ab * mask[..., None]).reshape(-1, 2).sum(0) / total
    out = np.empty((*mask.shape, 2), np.float32)
    for c in range(2):
        out[..., c] = np.where(reached, data[c] / np.where(reached, weight, 1.0), fallback[c])
    return out, weight


_PEAKS: dict[tuple[float, float], float] = {}


def _impulse_peak(sigma: float, edge: float) -> float:
    """The filtered weight of a one-pixel hint at its own pixel, in a flat image."""
    key = (round(sigma, 3), edge)
    if key not in _PEAKS:
        side = int(min(4 * sigma, 2048)) | 1
        data = np.zeros((1, side, side), np.float32)
        data[0, side // 2, side // 2] = 1.0
        flat = np.zeros((side, side), np.float32)
        _PEAKS[key] = float(domain_transform(data, flat, sigma, edge)[0, side // 2, side // 2])
    return _PEAKS[key]
