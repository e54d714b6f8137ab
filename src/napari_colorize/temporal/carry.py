"""What one plane hands to the next: its hints, moved along the motion, and its colours.

Both work at the working size, on the hint maps of the package's hint format
(``ab_to_net(ab)`` in channels 0-1, mask in channel 2, see
:mod:`napari_colorize.hints`) and on ab in Lab units.
"""

from __future__ import annotations

import numpy as np

from ..color import AB_SCALE
from .flow import Motion, warp

__all__ = ["blend_colours", "carry_hints", "with_carried_colours"]

#: Hints are carried only to target pixels at least this reliable.
_HINT_RELIABILITY = 0.5
#: Hint weight of a fully reliable pixel of the previous plane's colours (a hint weighs 1).
CARRIED_COLOUR_WEIGHT = 0.02


def carry_hints(hints: np.ndarray | None, motion: Motion) -> np.ndarray | None:
    """The source plane's hints moved onto the target plane.

    Each hinted pixel moves along the forward flow to its nearest target pixel
    and is kept where the motion is reliable there; hints that leave the frame
    or land in an occlusion are dropped.

    Parameters
    ----------
    hints : numpy.ndarray or None
        (h, w, 3) hint map of the source plane.
    motion : Motion
        From :func:`~napari_colorize.temporal.flow.estimate_motion` (source -> target).

    Returns
    -------
    numpy.ndarray or None
        (h, w, 3) hint map of the target plane, or None when no hint survives.
    """
    if hints is None or motion.cut:
        return None
    mask = hints[..., 2]
    rows, cols = np.nonzero(mask > 0)
    if rows.size == 0:
        return None
    height, width = mask.shape
    step = motion.forward[rows, cols]
    new_rows = np.rint(rows + step[:, 0]).astype(np.intp)
    new_cols = np.rint(cols + step[:, 1]).astype(np.intp)
    inside = (new_rows >= 0) & (new_rows < height) & (new_cols >= 0) & (new_cols < width)
    rows, cols, new_rows, new_cols = rows[inside], cols[inside], new_rows[inside], new_cols[inside]
    kept = motion.reliability[new_rows, new_cols] >= _HINT_RELIABILITY
    if not np.any(kept):
        return None
    carried = np.zeros_like(hints)
    carried[new_rows[kept], new_cols[kept]] = hints[rows[kept], cols[kept]]
    return carried


def blend_colours(
    own_ab: np.ndarray, previous_ab: np.ndarray, motion: Motion, strength: float
) -> np.ndarray:
    """The plane's own colours pulled towards the previous plane's, where the motion is trusted.

    ``strength * reliability`` of the previous plane's warped colours plus the
    rest of the plane's own: a running mean along the motion that fades to the
    plane's own prediction in occlusions, new content and after a cut.

    Parameters
    ----------
    own_ab, previous_ab : numpy.ndarray
        (h, w, 2) ab of this plane (own prediction) and of the previous plane
        (as written).
    motion : Motion
        previous -> this plane.
    strength : float
        In [0, 1): weight of the carried colours where the motion is fully reliable.

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 2).
    """
    if motion.cut or strength <= 0:
        return own_ab
    weight = (strength * motion.reliability)[..., None]
    carried = warp(previous_ab, motion.backward)
    return (weight * carried + (1.0 - weight) * own_ab).astype(np.float32)


def with_carried_colours(
    hints: np.ndarray | None, previous_ab: np.ndarray, motion: Motion
) -> np.ndarray | None:
    """Hint maps that add the previous plane's colours as faint hints wherever they are trusted.

    Hint propagation alone colours content new to the plane (entering the
    frame, uncovered) from the nearest hints, whatever they are; with the
    previous colours as faint hints (weight :data:`CARRIED_COLOUR_WEIGHT`
    times the reliability) it takes the colours of its surroundings along
    lightness instead, while real hints keep their full weight.

    Parameters
    ----------
    hints : numpy.ndarray or None
        (h, w, 3) hint map of this plane (carried or its own).
    previous_ab : numpy.ndarray
        (h, w, 2) ab of the previous plane, in Lab units.
    motion : Motion
        previous -> this plane.

    Returns
    -------
    numpy.ndarray or None
        (h, w, 3) hint map; ``hints`` unchanged across a cut.
    """
    if motion.cut:
        return hints
    carried = warp(previous_ab, motion.backward) / AB_SCALE
    weight = CARRIED_COLOUR_WEIGHT * motion.reliability
    if hints is None:
        return np.concatenate([carried, weight[..., None]], axis=-1).astype(np.float32)
    out = hints.astype(np.float32, copy=True)
    free = out[..., 2] <= 0
    out[free, :2] = carried[free]
    out[free, 2] = weight[free]
    return out
