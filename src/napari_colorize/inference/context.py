"""How far a network looks: the margin a tile needs so its edge matches the whole image.

A tiled prediction equals the untiled one only where a tile holds all the
context its pixels' outputs depend on. A convolutional network's theoretical
receptive field is much wider than the context that changes its output in
practice (a trained ``beta-punks``, a 4-scale U-Net with a receptive field of
about 80 px, colours within 0.5 ab units of the whole image 24 px from a
tile's edge). So the
context is measured once per network: it colours a photograph in crops that
leave a window of it a growing margin from the crop's top-left, then its
bottom-right, edge, and the margin is the smallest whose window matches the
whole image's prediction within :data:`TOLERANCE_AB`. The
:class:`~.colorizer.Colorizer` drops a margin on each side of an overlap and
cross-fades over :data:`CROSS_FADE` pixels between. A network
whose every pixel depends on the whole image (one with a global class vector)
matches at no margin: it gets the Colorizer's fixed overlap. Crops start on
multiples of 8, the grid of the package's networks (see :mod:`.tiling`).
"""

from __future__ import annotations

import weakref

import numpy as np

from ..color import AB_SCALE, l_to_net

__all__ = ["CROSS_FADE", "MARGINS", "TOLERANCE_AB", "context_margin"]

#: Largest ab difference (Lab units) between a window near a crop's edge and the whole image.
TOLERANCE_AB = 0.5
#: The margins tried, in pixels of the network's input (multiples of 8, so that the
#: crops start on the grid of networks that downsample by 8).
MARGINS = (8, 16, 24, 32, 48, 64, 96)
#: Length of the cross-fade between tiles that overlap by two measured margins and it.
CROSS_FADE = 16
#: Side of the window compared; context a crop leaves at least on the window's far
#: side; the crops' side (one shape for all, so the network prepares its kernels once);
#: where the window starts in the probe image, and the probe image's side.
_WINDOW, _FAR = 32, 96
_CROP = _WINDOW + _FAR + MARGINS[-1]
_START = _CROP - _WINDOW - MARGINS[0]
_PROBE = _START - MARGINS[0] + _CROP

_margins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _probe_lightness():
    """CIE L (1, 1, side, side) of scikit-image's camera photograph (bundled, no download)."""
    import torch
    import torch.nn.functional as F
    from skimage import data

    photo = torch.from_numpy(data.camera().astype(np.float32) * (100.0 / 255.0))[None, None]
    return F.interpolate(photo, size=(_PROBE, _PROBE), mode="bilinear", antialias=True)


def _matches(forward, x, whole, margin: int) -> bool:
    """Whether the window, ``margin`` px from a crop's near edges, matches ``whole``."""
    a, w = _START, _WINDOW
    # the window near the crop's top-left corner, then near its bottom-right one
    first = a - margin
    last = a + w + margin - _CROP
    crops = (
        (slice(first, first + _CROP), slice(margin, margin + w)),
        (slice(last, last + _CROP), slice(_CROP - margin - w, _CROP - margin)),
    )
    for crop, inner in crops:
        part = forward(x[..., crop, crop])[..., inner, inner]
        if float((part - whole).abs().max()) * AB_SCALE > TOLERANCE_AB:
            return False
    return True


def context_margin(model, forward) -> int | None:
    """The margin (pixels) of context ``model`` needs, measured once and remembered.

    Parameters
    ----------
    model : torch.nn.Module
        The network (the key under which the margin is remembered).
    forward : callable
        ``forward(x)`` -> ab in the network's units for ``x`` = ``l_to_net(L)``
        of shape (1, 1, h, w), with whatever other inputs the network takes.

    Returns
    -------
    int or None
        The smallest of :data:`MARGINS` at which a window near a crop's edges
        matches the whole probe image within :data:`TOLERANCE_AB`; None when
        even the largest does not (the output depends on the whole image).
    """
    if model in _margins:
        return _margins[model]

    x = l_to_net(_probe_lightness())
    window = slice(_START, _START + _WINDOW)
    whole = forward(x)[..., window, window]
    found = None
    if _matches(forward, x, whole, MARGINS[-1]):
        lo, hi = 0, len(MARGINS) - 1  # MARGINS[hi] matches; bisect for the first that does
        while lo < hi:
            mid = (lo + hi) // 2
            if _matches(forward, x, whole, MARGINS[mid]):
                hi = mid
            else:
                lo = mid + 1
        found = MARGINS[hi]
    _margins[model] = found
    return found
