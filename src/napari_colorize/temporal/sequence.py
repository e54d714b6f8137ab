"""Colour a stack plane after plane along its scroll axis, carrying hints and colours.

The :class:`~napari_colorize.inference.Colorizer` hands its stack here when
``temporal`` is on. A *sequence* is the run of planes along the last
non-spatial axis (the one napari scrolls) for one index of the axes before
it. In each sequence:

- the first plane with hints of its own (a *keyframe*; plane 0 without any)
  is coloured first, then the planes before it backwards, then the planes
  after it forwards, so hints on any plane reach the whole sequence;
- a plane without hints of its own gets the previous plane's hints moved along
  the motion (:func:`~.carry.carry_hints`); a plane with its own hints keeps
  its own colours and the planes after it follow it;
- every other plane's colours are blended with the previous plane's along the
  motion (:func:`~.carry.blend_colours`), which removes flicker where the
  motion is trusted and leaves occlusions, new content and cuts to the plane's
  own prediction.

Only the previous plane is held (at the working size): memory does not grow
with the length of the stack, and dask or zarr planes are read one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..guided import HintPropagator
from .carry import blend_colours, carry_hints, with_carried_colours
from .flow import estimate_motion

__all__ = ["DEFAULT_STRENGTH", "keyframe", "plane_order", "run_sequences"]

#: Weight of the previous plane's colours where the motion is fully trusted.
DEFAULT_STRENGTH = 0.8


@dataclass
class _Previous:
    lightness: np.ndarray  # (h, w) L at the working size
    ab: np.ndarray  # (h, w, 2) as written
    hints: np.ndarray | None  # (h, w, 3) at the working size


def _has_hints(maps) -> bool:
    return maps is not None and bool(np.any(np.asarray(maps)[..., 2] > 0))


def keyframe(hints: dict, outer: tuple[int, ...], length: int) -> int:
    """The first plane of the sequence at ``outer`` with hints of its own (0 without any).

    Parameters
    ----------
    hints : dict
        ``Colorizer._prepare_hints`` output: name -> (maps, per_plane).
    outer : tuple of int
        Index of the sequence in the axes before the scroll axis.
    length : int
        Planes in the sequence.
    """
    entry = hints.get("hints")
    if entry is None:
        return 0
    maps, per_plane = entry
    if not per_plane:
        return 0
    planes = getattr(getattr(maps, "hints", None), "planes", None)
    if planes is not None:  # a HintStack knows its hinted planes without making maps
        hinted = sorted(p[-1] for p in map(tuple, planes) if tuple(p[:-1]) == outer)
        return hinted[0] if hinted else 0
    for j in range(length):
        if _has_hints(maps[(*outer, j)]):
            return j
    return 0


def plane_order(length: int, start: int) -> list[int]:
    """``start``, the planes before it backwards, then the planes after it forwards."""
    return [start, *range(start - 1, -1, -1), *range(start + 1, length)]


def run_sequences(colorizer, array, layout, to_l, out, output, hints, work, state, strength):
    """Generator of progress events colouring every sequence of ``array`` into ``out``.

    Returns the number of planes left unwritten (non-zero only after a stop request).
    """
    from ..inference.progress import ColorizeProgress

    leading = layout.leading_shape
    length = leading[-1]
    n = layout.n_planes
    for outer in np.ndindex(*leading[:-1]):
        start = keyframe(hints, outer, length)
        anchor = None
        previous = None
        for j in plane_order(length, start):
            if colorizer._stop.is_set():
                return state.planes_left
            if j == start - 1 or (j == start + 1 and start > 0):
                previous = anchor  # each direction starts again from the keyframe
            index = (*outer, j)
            previous = yield from _plane(
                colorizer, array, index, to_l, out, output, hints, work, state, previous, strength
            )
            if previous is None:  # stopped inside the network
                return state.planes_left
            if j == start:
                anchor = previous
            state.done += 1
            state.planes_left -= 1
            yield ColorizeProgress(
                state.done, state.total, index, f"plane {n - state.planes_left}/{n}"
            )
    return state.planes_left


def _plane(colorizer, array, index, to_l, out, output, hints, work, state, previous, strength):
    """Generator: colour one plane given the previous one; returns its :class:`_Previous`."""
    import torch

    lightness = to_l(np.asarray(array[index]), index)
    l_work, cond = colorizer._working_inputs([(index, lightness)], work, hints)
    l_np = l_work[0, 0].float().cpu().numpy().copy()  # kept as the next plane's previous
    own = cond.pop("hints", None)
    own = None if own is None else own[0].permute(1, 2, 0).float().cpu().numpy()
    keyframe_here = _has_hints(own)
    motion = None if previous is None else estimate_motion(previous.lightness, l_np)
    if keyframe_here:
        plane_hints = own
    elif motion is not None:
        plane_hints = carry_hints(previous.hints, motion)
    else:
        plane_hints = None
    if motion is not None and not keyframe_here and isinstance(colorizer.method, HintPropagator):
        # hints alone know nothing of new content: let the previous colours spread into it
        plane_hints = with_carried_colours(plane_hints, previous.ab, motion)
    hint_maps = None
    if plane_hints is not None:
        hint_maps = torch.from_numpy(np.ascontiguousarray(plane_hints.transpose(2, 0, 1)))[None]
        hint_maps = hint_maps.to(colorizer.device)
    if colorizer.method is not None:
        ab = colorizer._guided_predict(l_work, hint_maps)
    else:
        if colorizer.model_takes_hints and hint_maps is not None:
            cond["hints"] = hint_maps
        ab = yield from colorizer._predict(l_work, cond, state, index)
        if ab is None:
            return None
    if colorizer.corrector is not None and hint_maps is not None:
        ab = colorizer._correct(l_work, ab, hint_maps)
    ab_np = ab[0].permute(1, 2, 0).float().cpu().numpy()
    if motion is not None and not keyframe_here:
        ab_np = blend_colours(ab_np, previous.ab, motion, strength)
    if plane_hints is None and float(lightness.min()) == float(lightness.max()):
        ab_np = np.zeros_like(ab_np)  # a constant plane has nothing to tell colours by
    ab_t = torch.from_numpy(np.ascontiguousarray(ab_np.transpose(2, 0, 1))).to(colorizer.device)
    colorizer._write(lightness, ab_t, out, index, output)
    return _Previous(l_np, ab_np, plane_hints)
