"""Choosing what part of a layer to colorize, and how the results sit in the viewer.

The widgets ask this module, with plain arrays and tuples (never napari
objects), which array to hand to :class:`~napari_colorize.inference.Colorizer`
(the current plane of a stack, the level of a multiscale pyramid) and which
scale, translate, rotate, shear and affine the output layers take so that they
lie exactly over their source. It also splits RGB into L, a and b and merges
them back, and describes the colormaps of the three channels.

Nothing here imports Qt or napari; the dictionaries it returns are the keyword
arguments of ``napari.Viewer.add_image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .color import l_ab_to_rgb, lab_to_rgb, rgb_to_lab

__all__ = [
    "LAB_CHANNELS",
    "LAB_CONTRAST_LIMITS",
    "METADATA_KEY",
    "Selection",
    "choose_level",
    "lab_colormap_colors",
    "merge_lab",
    "output_layer_kwargs",
    "output_name",
    "plane_index",
    "select_source",
    "split_lab",
]

#: The channel names of CIE Lab, in order.
LAB_CHANNELS = ("L", "a", "b")
#: Fixed contrast limits of the L, a and b layers (the full range of each channel).
LAB_CONTRAST_LIMITS = {"L": (0.0, 100.0), "a": (-128.0, 127.0), "b": (-128.0, 127.0)}
#: Key under which output layers carry ``{"source": name, "role": role}`` in their metadata,
#: so a widget finds its own output again instead of piling up copies.
METADATA_KEY = "napari_colorize"

# Lightness along the a and b colormaps: a stays at a medium L so both of its ends
# are saturated; b rises from a dark blue to a bright yellow, as those colours are
# only vivid at those lightnesses.
_COLORMAP_L = {"a": (55.0, 55.0), "b": (40.0, 92.0)}


@dataclass(frozen=True)
class Selection:
    """The array to colorize and where it lies within its source layer.

    Attributes
    ----------
    array : array-like
        What to colorize: a level of a pyramid, or one plane of a stack (its
        stack axes kept, with length 1), never read here.
    level : int
        The multiscale level taken (0 for a single-scale layer).
    factors : tuple of float
        Per layer axis, how many source (level 0) pixels one pixel of ``array`` spans.
    offset : tuple of float
        Per layer axis, the position of ``array``'s first pixel in source (level 0) pixels.
    """

    array: Any
    level: int
    factors: tuple[float, ...]
    offset: tuple[float, ...]


def choose_level(shapes: Sequence[Sequence[int]], shown_level: int, full_resolution: bool) -> int:
    """Pick the level of a multiscale pyramid to colorize.

    Parameters
    ----------
    shapes : sequence of tuple of int
        The shape of every level, largest first.
    shown_level : int
        The level the viewer displays now.
    full_resolution : bool
        Take level 0 whatever is shown.

    Returns
    -------
    int
    """
    if not shapes:
        raise ValueError("a multiscale layer needs at least one level")
    if full_resolution:
        return 0
    return int(min(max(int(shown_level), 0), len(shapes) - 1))


def plane_index(point: Sequence[float], shape: Sequence[int], n_stack: int) -> tuple[int, ...]:
    """Index of the plane shown at ``point`` along the first ``n_stack`` axes.

    Parameters
    ----------
    point : sequence of float
        A position in the layer's data coordinates (as ``layer.world_to_data``
        gives it), one value per layer axis.
    shape : sequence of int
        The layer's shape along its axes (without the colour axis).
    n_stack : int
        How many leading axes are stack axes (``ndim - 2``).

    Returns
    -------
    tuple of int
        Rounded and clipped into the array.
    """
    if len(point) < n_stack or len(shape) < n_stack:
        raise ValueError(
            f"a position with {len(point)} values cannot pick a plane of a stack "
            f"with {n_stack} stack axes"
        )
    return tuple(
        int(min(max(round(float(p)), 0), int(n) - 1))
        for p, n in zip(point[:n_stack], shape[:n_stack])
    )


def select_source(
    data: Any,
    *,
    ndim: int,
    multiscale: bool = False,
    level: int = 0,
    plane: Sequence[int] | None = None,
) -> Selection:
    """Cut out of a layer's data what is to be colorized, without reading it.

    Parameters
    ----------
    data : array-like or sequence of array-like
        The layer's data; a list of levels, largest first, when ``multiscale``.
    ndim : int
        The layer's number of axes, without the colour axis of an RGB layer.
    multiscale : bool
        Whether ``data`` is a pyramid.
    level : int
        The level to take from a pyramid (see :func:`choose_level`).
    plane : tuple of int, optional
        Take only this plane of a stack (its index along the ``ndim - 2``
        stack axes, in level-0 pixels); ``None`` takes every plane.

    Returns
    -------
    Selection
    """
    if ndim < 2:
        raise ValueError(f"an image layer needs at least 2 axes (H, W), this one has {ndim}")
    levels = list(data) if multiscale else [data]
    if not 0 <= level < len(levels):
        raise ValueError(f"level {level} does not exist; this layer has {len(levels)} level(s)")
    array = levels[level]
    base = tuple(levels[0].shape[:ndim])
    shape = tuple(array.shape[:ndim])
    factors = tuple(float(b) / float(s) if s else 1.0 for b, s in zip(base, shape))
    offset = [0.0] * ndim
    n_stack = ndim - 2
    if plane is not None and n_stack > 0:
        if len(plane) != n_stack:
            raise ValueError(
                f"a plane of this stack has {n_stack} index value(s), got {len(plane)}"
            )
        index = []
        for axis, i in enumerate(plane):
            j = int(min(max(int(i // factors[axis]), 0), shape[axis] - 1))
            index.append(slice(j, j + 1))
            offset[axis] = j * factors[axis]
        array = array[tuple(index)]
    return Selection(array=array, level=level, factors=factors, offset=tuple(offset))


def output_name(source: str, role: str) -> str:
    """The name of an output layer: ``"<source> colorized"``, ``"<source> L"``..."""
    return f"{source} {role}"


def output_layer_kwargs(
    source: str,
    role: str,
    *,
    scale: Sequence[float],
    translate: Sequence[float],
    rotate: Any = None,
    shear: Any = None,
    affine: Any = None,
    selection: Selection | None = None,
) -> dict:
    """Keyword arguments for ``viewer.add_image`` that lay an output over its source.

    Parameters
    ----------
    source : str
        The source layer's name.
    role : str
        ``"colorized"``, ``"L"``, ``"a"``, ``"b"``...
    scale, translate : sequence of float
        The source layer's, one value per layer axis.
    rotate, shear, affine : array-like, optional
        The source layer's (napari's matrices); passed on unchanged.
    selection : Selection, optional
        What was colorized; a coarser level scales up, a single plane moves
        to its place in the stack.

    Returns
    -------
    dict
        ``name``, ``scale``, ``translate`` (and ``rotate``, ``shear``,
        ``affine`` where given) and ``metadata``, which marks the layer as this
        source's output of this role.
    """
    scale = np.asarray(scale, dtype=float)
    translate = np.asarray(translate, dtype=float)
    if scale.shape != translate.shape:
        raise ValueError(f"scale {tuple(scale)} and translate {tuple(translate)} differ in length")
    if selection is not None:
        if len(selection.factors) != scale.size:
            raise ValueError(
                f"the selection has {len(selection.factors)} axes, the layer {scale.size}"
            )
        translate = translate + np.asarray(selection.offset) * scale
        scale = scale * np.asarray(selection.factors)
    kwargs = {
        "name": output_name(source, role),
        "scale": tuple(float(s) for s in scale),
        "translate": tuple(float(t) for t in translate),
        "metadata": {METADATA_KEY: {"source": source, "role": role}},
    }
    for key, value in (("rotate", rotate), ("shear", shear), ("affine", affine)):
        if value is not None:
            kwargs[key] = np.asarray(value, dtype=float)
    return kwargs


def split_lab(rgb: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split RGB (or RGBA, alpha ignored) into its CIE L, a and b channels.

    Parameters
    ----------
    rgb : array-like
        ``(..., 3)`` or ``(..., 4)``: uint8, uint16, or float in [0, 1].

    Returns
    -------
    tuple of numpy.ndarray
        L in [0, 100], a and b in about [-128, 127]; float32, shape ``(...)``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 2 or rgb.shape[-1] not in (3, 4):
        raise ValueError(
            f"expected an RGB(A) image with 3 or 4 values on its last axis, got shape {rgb.shape}"
        )
    if rgb.dtype.kind == "f" and np.isnan(rgb).any():
        raise ValueError("the RGB image holds NaN values; fill or remove them first")
    if rgb.dtype.kind == "f":
        rgb = np.clip(rgb[..., :3], 0.0, 1.0).astype(np.float32)
    else:
        rgb = rgb[..., :3]
    lab = rgb_to_lab(rgb).astype(np.float32, copy=False)
    return lab[..., 0], lab[..., 1], lab[..., 2]


def merge_lab(lightness: Any, a: Any, b: Any) -> np.ndarray:
    """Merge L, a and b channels into RGB uint8, keeping L (:func:`~.color.l_ab_to_rgb`).

    Colours outside sRGB move towards the gray of the same luminance, as the
    Colorizer shows them.

    Parameters
    ----------
    lightness, a, b : array-like
        Equal shapes; L in [0, 100], a and b in about [-128, 127].

    Returns
    -------
    numpy.ndarray
        uint8, shape ``lightness.shape + (3,)``.
    """
    channels = [np.asarray(c, dtype=np.float32) for c in (lightness, a, b)]
    shapes = [c.shape for c in channels]
    if len(set(shapes)) != 1:
        raise ValueError(
            f"L, a and b must have the same shape to merge, got {shapes[0]}, {shapes[1]} "
            f"and {shapes[2]}; pick three channels of the same image"
        )
    return l_ab_to_rgb(channels[0], np.stack(channels[1:], axis=-1))


def lab_colormap_colors(channel: str, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Control points and RGBA colours of a colormap for one Lab channel.

    L is black to white; a runs from green (-128) through gray to magenta
    (+127) and b from blue to yellow, each drawn as the colour that value has
    (with the other chroma axis at 0) at a lightness where it is vivid.

    Parameters
    ----------
    channel : {"L", "a", "b"}
    n : int
        Number of control points (at least 2).

    Returns
    -------
    controls : numpy.ndarray
        ``(n,)`` in [0, 1].
    colors : numpy.ndarray
        ``(n, 4)`` RGBA in [0, 1].
    """
    if channel not in LAB_CHANNELS:
        raise ValueError(f"channel must be one of {LAB_CHANNELS}, got {channel!r}")
    n = max(int(n), 2)
    controls = np.linspace(0.0, 1.0, n)
    lo, hi = LAB_CONTRAST_LIMITS[channel]
    values = lo + controls * (hi - lo)
    lab = np.zeros((n, 3))
    if channel == "L":
        lab[:, 0] = values
    else:
        l_lo, l_hi = _COLORMAP_L[channel]
        lab[:, 0] = l_lo + controls * (l_hi - l_lo)
        lab[:, 1 if channel == "a" else 2] = values
    rgb = lab_to_rgb(lab)
    colors = np.concatenate([rgb, np.ones((n, 1))], axis=1)
    return controls, colors
