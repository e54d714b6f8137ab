"""Turn any array a user has into CIE L in [0, 100], and remember its layout.

Every model sees lightness only, so this module is where user data enters the
library: it checks the dtype and shape (:func:`describe`), finds the intensity
range that maps the data to [0, 1] (:func:`intensity_range`), reads the array one
2D plane at a time (:func:`iter_planes`) and converts each plane to L with
:mod:`napari_colorize.color` (:func:`plane_to_lightness`). The returned
:class:`ImageLayout` says how to give results back in the input's layout.

Layouts follow napari: the last two axes are spatial ``(H, W)``; when the last
axis has 3 or 4 entries and there are at least 3 axes, it is colour (RGB or
RGBA; alpha is ignored and the L of the colour is used). Every axis before the
spatial ones is a stack axis. numpy, dask, zarr and anything else with
``shape``, ``dtype`` and ``__getitem__`` work without being read as a whole;
lists and tuples go through :func:`numpy.asarray`.

Intensity ranges:

=========================================  ===================================
data                                       mapped to [0, 1] from
=========================================  ===================================
uint8                                      (0, 255)
bool                                       (0, 1)
float, all sampled values within [0, 1]    (0, 1)
anything else (uint16 microscopy, other    the 0.1 and 99.9 percentiles
ints, floats outside [0, 1])               (``percentiles=``; ``None``: the
                                           full int dtype range, or float
                                           min/max)
=========================================  ===================================

Values outside the range are clipped. A constant integer image is read on its
dtype's scale (all 0 is black, all 65535 white). A range with ``lo == hi`` (a
constant float image outside [0, 1]) maps the value ``lo`` to mid-gray (0.5,
L ~ 53.4), lower values to black and higher ones to white, so nothing divides
by zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .color import gray_to_l, rgb_to_lab

__all__ = [
    "DEFAULT_PERCENTILES",
    "MIN_SIZE",
    "ImageLayout",
    "describe",
    "intensity_range",
    "iter_planes",
    "plane_to_lightness",
    "to_lightness",
]

#: Smallest accepted height and width, in pixels.
MIN_SIZE = 4
#: Percentiles that set the intensity range of data that has no photo range.
DEFAULT_PERCENTILES = (0.1, 99.9)

# np.percentile over this many pixels takes well under a second; more adds nothing.
_MAX_PERCENTILE_VALUES = 1 << 22


@dataclass(frozen=True)
class ImageLayout:
    """How an input array is laid out, and what shape results take.

    Attributes
    ----------
    shape : tuple of int
        The input's shape.
    dtype : numpy.dtype
        The input's dtype.
    rgb : bool
        Whether the last axis (3 or 4 entries) is colour.
    spatial_shape : tuple of int
        ``(H, W)``.
    leading_shape : tuple of int
        Stack axes before the spatial ones; ``()`` for a single image.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    rgb: bool
    spatial_shape: tuple[int, int]
    leading_shape: tuple[int, ...]

    @property
    def n_planes(self) -> int:
        """Number of 2D planes (the product of ``leading_shape``; 1 for one image)."""
        return math.prod(self.leading_shape)

    @property
    def plane_shape(self) -> tuple[int, ...]:
        """Shape of one plane as :func:`iter_planes` yields it: ``(H, W)`` or ``(H, W, C)``."""
        return self.spatial_shape + ((self.shape[-1],) if self.rgb else ())

    @property
    def lightness_shape(self) -> tuple[int, ...]:
        """Shape of the L array: ``leading_shape + (H, W)``."""
        return self.leading_shape + self.spatial_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the colorized RGB result: ``leading_shape + (H, W, 3)``."""
        return self.leading_shape + self.spatial_shape + (3,)


# ------------------------------------------------------------------ checks


def _as_array(array: Any) -> Any:
    """Return ``array`` itself if it looks like an array, else ``np.asarray(array)``."""
    if all(hasattr(array, name) for name in ("shape", "dtype", "__getitem__")):
        try:
            np.dtype(array.dtype)
        except TypeError:
            pass  # e.g. a torch tensor: its dtype is not a numpy dtype
        else:
            return array
    if isinstance(array, (list, tuple)) and len(array) > 1:
        shapes = {tuple(getattr(a, "shape", ())) for a in array}
        if len(shapes) > 1 and all(hasattr(a, "shape") for a in array):
            raise ValueError(
                f"got a list of {len(array)} arrays of different shapes {sorted(shapes)}, "
                "which looks like multiscale (pyramid) data; pass one level, e.g. data[0]"
            )
    try:
        return np.asarray(array)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"cannot read {type(array).__name__} as an image array ({err}); "
            "pass a numpy, dask or zarr array, or a nested list of equal-length rows"
        ) from None


def _check_dtype(dtype: np.dtype) -> None:
    kind = dtype.kind
    if kind in "biuf":
        return
    if kind == "c":
        fix = "pass np.abs(array) for the magnitude or array.real for the real part"
    elif kind in "OUS":
        fix = "convert it to numbers first, e.g. array.astype(np.float32)"
    elif kind in "mM":
        fix = "convert it to numbers first, e.g. array.astype(np.int64)"
    else:
        fix = "pass a numeric array (structured arrays: select one field)"
    raise ValueError(f"unsupported dtype {dtype}: images must be bool, integer or float; {fix}")


def describe(array: Any, rgb: bool | None = None) -> ImageLayout:
    """Check an array's dtype and shape, without reading its data.

    Parameters
    ----------
    array : array-like
        numpy, dask, zarr or any object with ``shape``, ``dtype`` and
        ``__getitem__``; lists and tuples go through :func:`numpy.asarray`.
    rgb : bool, optional
        ``None`` guesses like napari: at least 3 axes and a last axis of 3 or 4
        entries is colour (RGB or RGBA), unless only the grayscale reading
        leaves at least ``MIN_SIZE`` pixels per spatial axis (a stack of
        4-pixel-wide planes). ``True`` requires such a last axis; ``False``
        treats every axis as grayscale (the last two are spatial).

    Returns
    -------
    ImageLayout

    Raises
    ------
    ValueError
        For complex, object, string or other non-numeric dtypes; 0D or 1D
        arrays; arrays with a zero-length axis; images smaller than
        ``MIN_SIZE`` pixels on either spatial axis; ``rgb=True`` without a
        colour axis. The message names the problem and the fix.
    """
    array = _as_array(array)
    dtype = np.dtype(array.dtype)
    shape = tuple(int(n) for n in array.shape)
    _check_dtype(dtype)
    if len(shape) < 2:
        raise ValueError(
            f"expected an image with at least 2 axes (H, W), got shape {shape}; "
            "reshape a flat array to (H, W), e.g. array.reshape(H, W)"
        )
    if 0 in shape:
        raise ValueError(
            f"the array is empty (shape {shape} has a zero-length axis); "
            "pass an image with at least one pixel on every axis"
        )
    colour_axis = len(shape) >= 3 and shape[-1] in (3, 4)
    fits_rgb = colour_axis and min(shape[-3:-1]) >= MIN_SIZE
    fits_gray = min(shape[-2:]) >= MIN_SIZE
    if rgb is None:
        # napari's guess, unless only the grayscale reading leaves a usable image
        rgb = colour_axis and (fits_rgb or not fits_gray)
    elif rgb and not colour_axis:
        raise ValueError(
            f"rgb=True needs at least 3 axes and a last axis of 3 (RGB) or 4 (RGBA) entries, "
            f"got shape {shape}; pass rgb=False (or None) for a grayscale image or stack, "
            "or move the colour axis last with np.moveaxis(array, axis, -1)"
        )
    rgb = bool(rgb)
    spatial = shape[-3:-1] if rgb else shape[-2:]
    height, width = spatial
    if height < MIN_SIZE or width < MIN_SIZE:
        small = f"{width} pixels wide" if width < MIN_SIZE else f"{height} pixels high"
        hint = ""
        if rgb and fits_gray:
            hint = "; if the last axis is not colour, pass rgb=False"
        elif not rgb and fits_rgb:
            hint = f"; if the last axis ({shape[-1]} entries) is colour, pass rgb=True"
        raise ValueError(
            f"the image is {small} (shape {shape}, spatial axes {spatial}); napari-colorize "
            f"needs at least {MIN_SIZE} x {MIN_SIZE} pixels: pad or resize it, e.g. with "
            f"np.pad or skimage.transform.resize{hint}"
        )
    leading = shape[:-3] if rgb else shape[:-2]
    return ImageLayout(shape, dtype, rgb, (height, width), leading)


def _layout_for(array: Any, layout: ImageLayout | None) -> ImageLayout:
    if layout is None:
        return describe(array)
    if tuple(array.shape) != layout.shape:
        raise ValueError(
            f"the layout describes shape {layout.shape} but the array has shape "
            f"{tuple(array.shape)}; call describe(array) for this array"
        )
    return layout


def _check_finite(plane: np.ndarray, index: tuple | None) -> None:
    if plane.dtype.kind != "f" or np.isfinite(plane).all():
        return
    what = "NaN" if np.isnan(plane).any() else "inf"
    where = f" (in plane {index})" if index else ""
    raise ValueError(
        f"the image contains {what}{where}; replace NaN and inf values first, e.g. "
        "with np.nan_to_num(array), or crop/mask the region they cover"
    )


# ------------------------------------------------------------------ reading


def _plane_index(layout: ImageLayout, flat: int) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, layout.leading_shape))


def iter_planes(array: Any, layout: ImageLayout) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield every 2D plane of an array, reading one plane at a time.

    Parameters
    ----------
    array : array-like
        The array :func:`describe` was given; dask and zarr arrays stay lazy
        (each plane is read with ``np.asarray(array[index])``).
    layout : ImageLayout
        From ``describe(array)``.

    Yields
    ------
    index : tuple of int
        Index into ``layout.leading_shape`` (``()`` for a single image); the
        result for this plane goes to ``out[index]``.
    plane : numpy.ndarray
        ``(H, W)``, or ``(H, W, C)`` for RGB/RGBA, in the input's dtype.
    """
    array = _as_array(array)
    layout = _layout_for(array, layout)
    for index in np.ndindex(*layout.leading_shape):
        yield index, np.asarray(array[index])


def _sample_planes(array: Any, layout: ImageLayout, max_planes: int | None):
    """Evenly spaced planes (at most ``max_planes``), colour channels only."""
    n = layout.n_planes
    if max_planes is None or n <= max_planes:
        flats = range(n)
    else:
        if max_planes < 1:
            raise ValueError(f"max_planes must be at least 1 or None, got {max_planes}")
        flats = np.unique(np.linspace(0, n - 1, max_planes).round().astype(int))
    for flat in flats:
        index = _plane_index(layout, flat)
        plane = np.asarray(array[index])
        if layout.rgb:
            plane = plane[..., :3]  # alpha is not intensity
        _check_finite(plane, index)
        yield plane


def intensity_range(
    array: Any,
    layout: ImageLayout | None = None,
    percentiles: tuple[float, float] | None = DEFAULT_PERCENTILES,
    max_planes: int | None = 8,
) -> tuple[float, float]:
    """The values that map to black and white, from the dtype or from the data.

    Parameters
    ----------
    array : array-like
        numpy, dask, zarr, ...; see :func:`describe`.
    layout : ImageLayout, optional
        From :func:`describe`; computed (guessing RGB) when omitted.
    percentiles : (float, float) or None
        Lower and upper percentiles (0-100) for data without a photo range
        (uint16, other integers, floats outside [0, 1]); default (0.1, 99.9).
        ``None`` uses the full dtype range for integers and min/max for floats.
    max_planes : int or None
        Read at most this many evenly spaced planes (of ``layout.n_planes``);
        ``None`` reads all. The alpha channel of RGBA data is ignored.

    Returns
    -------
    (lo, hi) : (float, float)
        ``lo <= hi``. uint8 gives (0, 255) and bool (0, 1) without reading any
        data; floats whose sampled values all lie in [0, 1] give (0, 1). When
        the percentiles coincide (mostly-constant data such as sparse
        fluorescence), the sampled min/max is used instead. A constant integer
        image gets its dtype's range (``(0, max)`` unsigned), so all 0 is black
        and all 65535 white; ``lo == hi`` is left only for a constant float
        image outside [0, 1] (see :func:`plane_to_lightness`).

    Raises
    ------
    ValueError
        NaN or inf in a sampled plane, or percentiles outside
        ``0 <= lower < upper <= 100``.

    Notes
    -----
    For stacks with more than ``max_planes`` planes the range comes from a
    sample, so values in unread planes may fall outside it (they are clipped).
    """
    array = _as_array(array)
    layout = _layout_for(array, layout)
    dtype = layout.dtype
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype.kind == "b":
        return 0.0, 1.0
    if percentiles is not None:
        p_lo, p_hi = (float(p) for p in percentiles)
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise ValueError(
                f"percentiles must satisfy 0 <= lower < upper <= 100, got {percentiles}; "
                "e.g. percentiles=(0.1, 99.9), or None for the full range"
            )
    if dtype.kind in "iu" and percentiles is None:
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)

    planes = list(_sample_planes(array, layout, max_planes))
    lo = float(min(p.min() for p in planes))
    hi = float(max(p.max() for p in planes))
    if dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if lo == hi and dtype.kind in "iu":
        # a constant integer image: its value on the dtype's scale (all 0 black, all max white)
        info = np.iinfo(dtype)
        return (0.0 if lo >= 0 else float(info.min)), float(info.max)
    if percentiles is None or lo == hi:
        return lo, hi
    step = max(1, sum(p.size for p in planes) // _MAX_PERCENTILE_VALUES)
    values = np.concatenate([p.ravel()[::step] for p in planes]).astype(np.float64)
    q_lo, q_hi = np.percentile(values, (p_lo, p_hi))
    if not (np.isfinite(q_lo) and np.isfinite(q_hi)):
        # interpolating across nearly the whole float64 range overflows
        q_lo, q_hi = np.percentile(values, (p_lo, p_hi), method="nearest")
    if q_lo >= q_hi:
        return lo, hi
    return float(q_lo), float(q_hi)


# --------------------------------------------------------------- lightness


def _check_range(value_range: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"value_range must be two numbers (lo, hi), got {value_range!r}; "
            "use intensity_range(array) to compute one"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ValueError(
            f"value_range must be finite with lo <= hi, got ({lo}, {hi}); "
            "use intensity_range(array) to compute one"
        )
    return lo, hi


def plane_to_lightness(
    plane: Any,
    layout: ImageLayout,
    value_range: Sequence[float],
    *,
    index: tuple[int, ...] | None = None,
) -> np.ndarray:
    """CIE L of one plane.

    Parameters
    ----------
    plane : array-like
        ``layout.plane_shape``: ``(H, W)`` gray or ``(H, W, 3|4)`` RGB(A).
    layout : ImageLayout
        From :func:`describe`.
    value_range : (float, float)
        ``(lo, hi)`` mapped to black and white (usually from
        :func:`intensity_range`); values outside are clipped. If ``lo == hi``,
        ``lo`` becomes mid-gray (0.5 before the sRGB curve), values below black
        and values above white.
    index : tuple of int, optional
        The plane's index, named in error messages.

    Returns
    -------
    numpy.ndarray
        float32 ``(H, W)`` in [0, 100]: :func:`~napari_colorize.color.gray_to_l`
        of gray data, the L of :func:`~napari_colorize.color.rgb_to_lab` for
        colour (alpha ignored).

    Raises
    ------
    ValueError
        For a plane of the wrong shape, NaN/inf values, or a bad ``value_range``.
    """
    plane = np.asarray(plane)
    if plane.shape != layout.plane_shape:
        raise ValueError(
            f"expected a plane of shape {layout.plane_shape}, got {plane.shape}; "
            "take planes from iter_planes(array, layout)"
        )
    _check_finite(plane, index)
    lo, hi = _check_range(value_range)
    if layout.rgb:
        plane = plane[..., :3]
    # float32 is exact enough for <= 16-bit data; wider ints and float64 keep float64
    work = np.result_type(plane.dtype, np.float32)
    values = plane.astype(work, copy=False)
    if hi > lo:
        # halves keep (x - lo) / (hi - lo) finite for values near the float maximum
        half_lo, half_span = work.type(lo * 0.5), work.type(hi * 0.5 - lo * 0.5)
        unit = (values * work.type(0.5) - half_lo) / half_span
    else:
        unit = np.where(values > lo, 1.0, np.where(values < lo, 0.0, 0.5)).astype(work)
    unit = np.clip(unit, 0.0, 1.0)
    lightness = rgb_to_lab(unit)[..., 0] if layout.rgb else gray_to_l(unit)
    return np.clip(lightness, 0.0, 100.0).astype(np.float32, copy=False)


def to_lightness(
    array: Any,
    rgb: bool | None = None,
    percentiles: tuple[float, float] | None = DEFAULT_PERCENTILES,
    *,
    value_range: Sequence[float] | None = None,
    max_planes: int | None = 8,
) -> tuple[np.ndarray, ImageLayout]:
    """L in [0, 100] of a whole array, held in memory.

    Parameters
    ----------
    array : array-like
        Any supported image or stack (see :func:`describe`); lazy arrays are
        read plane by plane, but the result is one numpy array.
    rgb : bool, optional
        See :func:`describe`.
    percentiles : (float, float) or None
        See :func:`intensity_range`.
    value_range : (float, float), optional
        Use this ``(lo, hi)`` (e.g. a napari layer's ``contrast_limits``)
        instead of :func:`intensity_range`.
    max_planes : int or None
        See :func:`intensity_range`.

    Returns
    -------
    lightness : numpy.ndarray
        float32, shape ``layout.leading_shape + (H, W)``.
    layout : ImageLayout
    """
    array = _as_array(array)
    layout = describe(array, rgb=rgb)
    if value_range is None:
        value_range = intensity_range(array, layout, percentiles, max_planes)
    out = np.empty(layout.lightness_shape, dtype=np.float32)
    for index, plane in iter_planes(array, layout):
        out[index] = plane_to_lightness(plane, layout, value_range, index=index)
    return out, layout
