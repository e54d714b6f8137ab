"""User colour hints: from napari Points to hint maps in the package's hint format.

A *hint* tells a hint-aware colorizer the colour at a few places (Zhang et al.
2017, "Real-Time User-Guided Image Colorization with Learned Deep Priors").
The format every hint-aware model takes is defined in
:mod:`napari_colorize.models.hint_format`: ``ab_to_net(ab)`` in channels 0-1 and a
[0, 1] mask in channel 2. Here it is made from points, as a napari Points layer
holds them (:class:`PointHints`, :func:`points_to_hints`, :func:`read_hints_csv`):
each point's face colour gives the ab (its L is ignored: the image keeps its own
lightness), its size the diameter of the disc it paints, in world units, so a
point covers what it covers on screen whatever the scale, translate or affine of
the image layer. Arrays are channel-last ``(H, W, 3)`` float32 at the image's
pixel grid, as :class:`napari_colorize.inference.Colorizer` takes them
(``hints=``); :class:`HintSource` is what it takes besides arrays.
:func:`model_takes_hints` tells from a model's metadata whether it takes hints.

Hints sampled from the true colours (training, :func:`napari_colorize.evaluation.
evaluate_hints`) are in :mod:`napari_colorize.hint_sampling`.

Nothing here imports Qt or napari; torch is imported only by the functions
that need it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .color import AB_SCALE, rgb_to_lab
from .models.hint_format import HINT_CHANNELS

__all__ = [
    "HINT_CHANNELS",
    "HintSource",
    "HintStack",
    "PointHints",
    "data_to_world_matrix",
    "model_takes_hints",
    "points_to_hints",
    "read_hints_csv",
]


# ------------------------------------------------------------------ geometry


def data_to_world_matrix(ndim: int, scale=None, translate=None, matrix=None) -> np.ndarray:
    """The ``(ndim + 1, ndim + 1)`` homogeneous matrix taking data to world coordinates.

    Parameters
    ----------
    ndim : int
        Axes of the layer (without the colour axis of an RGB layer).
    scale, translate : sequence of float, optional
        Per axis; default 1 and 0. Ignored when ``matrix`` is given.
    matrix : array-like, optional
        The full transform (napari: the layer's composite ``data2world`` affine,
        i.e. scale, translate, rotate, shear and the extra affine together),
        ``(ndim + 1, ndim + 1)`` homogeneous or ``(ndim, ndim)`` linear.

    Returns
    -------
    numpy.ndarray
        float64.
    """
    ndim = int(ndim)
    if matrix is not None:
        m = np.asarray(matrix, dtype=float)
        if m.shape == (ndim, ndim):
            full = np.eye(ndim + 1)
            full[:ndim, :ndim] = m
            m = full
        if m.shape != (ndim + 1, ndim + 1):
            raise ValueError(
                f"the transform matrix of a {ndim}D layer must be ({ndim + 1}, {ndim + 1}) "
                f"(homogeneous) or ({ndim}, {ndim}), got {m.shape}"
            )
        return m
    s = np.ones(ndim) if scale is None else np.asarray(scale, dtype=float)
    t = np.zeros(ndim) if translate is None else np.asarray(translate, dtype=float)
    if s.shape != (ndim,) or t.shape != (ndim,):
        raise ValueError(
            f"scale {tuple(s)} and translate {tuple(t)} must have one value per layer axis "
            f"({ndim})"
        )
    if np.any(s == 0):
        raise ValueError(f"a layer scale of 0 cannot be inverted: {tuple(s)}")
    m = np.eye(ndim + 1)
    m[:ndim, :ndim] = np.diag(s)
    m[:ndim, ndim] = t
    return m


def _as_colors(colors, n: int) -> np.ndarray:
    c = np.asarray(colors, dtype=float)
    if c.ndim == 1 and n and c.shape[0] in (3, 4):
        c = np.broadcast_to(c, (n, c.shape[0]))
    if c.shape[:1] != (n,) or c.ndim != 2 or c.shape[1] not in (3, 4):
        raise ValueError(
            f"colors must be RGB or RGBA values in [0, 1], one row per point: shape ({n}, 3) "
            f"or ({n}, 4), got {c.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError("point colours hold NaN or infinite values")
    return np.clip(c[:, :3], 0.0, 1.0)


def _as_sizes(sizes, n: int) -> np.ndarray:
    s = np.asarray(sizes, dtype=float)
    if s.ndim == 0:
        s = np.full(n, float(s))
    elif s.ndim == 2 and s.shape[0] == n:  # per-axis sizes of older napari: the displayed ones
        s = s[:, -2:].mean(axis=1)
    if s.shape != (n,):
        raise ValueError(f"sizes must be one number or one per point ({n}), got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("point sizes must be finite and >= 0")
    return s


class PixelGrid:
    """An image layer's pixel grid: its shape and its data <-> world transforms."""

    def __init__(self, image_shape, scale, translate, matrix):
        shape = tuple(int(n) for n in image_shape)
        if len(shape) < 2 or min(shape) < 1:
            raise ValueError(f"the image shape must be (H, W) or leading + (H, W), got {shape}")
        self.shape = shape
        self.ndim = nd = len(shape)
        self.to_world = data_to_world_matrix(nd, scale, translate, matrix)
        try:
            self.to_data = np.linalg.inv(self.to_world)
        except np.linalg.LinAlgError:
            raise ValueError("the image layer's transform cannot be inverted") from None
        lin = self.to_world[nd - 2 : nd, nd - 2 : nd]
        #: squared world length of a pixel offset d (row, col) is d @ gram @ d
        self.gram = lin.T @ lin
        #: half-extent in pixels, per spatial axis, of a world distance of 1
        self.pixels_per_world = np.sqrt(np.clip(np.diag(np.linalg.pinv(self.gram)), 0.0, None))

    def to_pixels(self, world: np.ndarray) -> np.ndarray:
        """``(N, ndim)`` world coordinates in the image's data (pixel) coordinates."""
        nd = self.ndim
        return world @ self.to_data[:nd, :nd].T + self.to_data[:nd, nd]

    def plane_range(self, lo, hi) -> list[tuple[int, ...]]:
        """Planes whose indices lie between ``lo`` and ``hi`` (inclusive), within the stack."""
        ranges = [range(max(0, a), min(n - 1, b) + 1) for a, b, n in zip(lo, hi, self.shape[:-2])]
        return list(itertools.product(*ranges))


# ------------------------------------------------------------------ hint sources


class PlaneHints:
    """Hints on one image layer's pixel grid, made plane by plane.

    The base of :class:`PointHints`, :class:`~napari_colorize.scribbles.ShapeHints`
    and :class:`~napari_colorize.scribbles.LabelHints` (each a :class:`HintSource`):
    a subclass paints one plane's hints into a zeroed map in ``_paint_plane(index,
    out)`` and lists the planes that hold hints in ``planes``.
    """

    def __init__(self, grid: PixelGrid):
        self._grid = grid
        self.image_shape = grid.shape
        self.leading_shape = grid.shape[:-2]
        self.spatial_shape = grid.shape[-2:]

    def _index(self, index) -> tuple[int, ...]:
        index = tuple(int(i) for i in np.atleast_1d(index)) if len(index) else ()
        if len(index) != len(self.leading_shape) or not all(
            0 <= i < n for i, n in zip(index, self.leading_shape)
        ):
            raise ValueError(
                f"a plane of an image of shape {self.image_shape} has {len(self.leading_shape)} "
                f"index value(s) within {self.leading_shape}, got {index}"
            )
        return index

    def plane(self, index: Sequence[int] = (), out: np.ndarray | None = None) -> np.ndarray:
        """The hint map of one plane: float32 ``(H, W, 3)`` in the package's hint format.

        Parameters
        ----------
        index : tuple of int
            The plane's index along the leading axes; ``()`` for a 2D image.
        out : numpy.ndarray, optional
            ``(H, W, 3)`` float32 to write into (it is zeroed first).

        Raises
        ------
        ValueError
            ``index`` is not a plane of the image, or (labels) a label on the
            plane has no colour.
        """
        index = self._index(index)
        if out is None:
            out = np.zeros((*self.spatial_shape, HINT_CHANNELS), dtype=np.float32)
        else:
            out[...] = 0.0
        self._paint_plane(index, out)
        return out

    def _paint_plane(self, index: tuple[int, ...], out: np.ndarray) -> None:
        raise NotImplementedError

    def stack(self) -> HintStack:
        """All planes, made lazily (what :class:`~.inference.Colorizer` takes for a stack)."""
        return HintStack(self)


# ------------------------------------------------------------------ points -> hints


@dataclass(frozen=True)
class _Disc:
    plane: tuple[int, ...]
    center: np.ndarray  # (2,) row, column in pixels
    half_extent: np.ndarray  # (2,) bounding box half-size in pixels
    quad: np.ndarray  # (2, 2): pixel offset d is inside iff d @ quad @ d <= 1
    ab: np.ndarray  # (2,) ab_to_net units


class PointHints(PlaneHints):
    """Points in world coordinates, placed on the pixel grid of one image layer.

    Each point paints a disc of its colour's ab (mask 1) around its position:
    the disc has the point's size as diameter in world units, so on the
    image's grid it is an ellipse when the image's pixels are not square (or
    rotated, sheared). A point too small to cover any pixel centre still
    paints the pixel it lies in. Points outside the image, or (for stacks) not
    on a plane of it, are ignored; where discs overlap the later point wins
    (napari draws it on top).

    Parameters
    ----------
    points : array-like
        ``(N, D)`` positions in world coordinates (napari: the Points layer's
        data passed through its own data-to-world transform). With ``D`` larger
        than the image's axes, the last ones are used, as napari does.
    colors : array-like
        ``(N, 3)`` or ``(N, 4)`` RGB(A) in [0, 1] (napari's ``face_color``); alpha is ignored.
    sizes : float or array-like
        Diameters in world units, one or one per point.
    image_shape : sequence of int
        The image layer's shape without its colour axis: ``(H, W)`` or
        ``leading + (H, W)``.
    scale, translate, matrix
        The image layer's data-to-world transform (see :func:`data_to_world_matrix`).

    Attributes
    ----------
    discs : list
        The points that land on the image, in order.
    n_ignored : int
        Points outside the image (or between planes of a stack).
    """

    def __init__(
        self, points, colors, sizes, image_shape, *, scale=None, translate=None, matrix=None
    ):
        grid = PixelGrid(image_shape, scale, translate, matrix)
        super().__init__(grid)
        ndim = grid.ndim
        pts = np.asarray(points, dtype=float)
        if pts.size == 0:
            pts = pts.reshape(0, ndim)
        if pts.ndim != 2 or pts.shape[1] < ndim:
            raise ValueError(
                f"points must be (N, D) world coordinates with D >= {ndim} (the image's axes), "
                f"got shape {pts.shape}"
            )
        pts = pts[:, -ndim:]
        n = pts.shape[0]
        colors = _as_colors(colors, n)
        sizes = _as_sizes(sizes, n)
        data = grid.to_pixels(pts)
        ab = rgb_to_lab(colors)[:, 1:] / AB_SCALE if n else np.zeros((0, 2))
        self.discs: list[_Disc] = []
        self.n_ignored = 0
        h, w = self.spatial_shape
        for i in range(n):
            if not np.all(np.isfinite(data[i])):
                self.n_ignored += 1
                continue
            plane = tuple(round(float(v)) for v in data[i, :-2])
            center = data[i, -2:]
            inside = all(0 <= p < m for p, m in zip(plane, self.leading_shape))
            inside = inside and -0.5 <= center[0] < h - 0.5 and -0.5 <= center[1] < w - 0.5
            if not inside:
                self.n_ignored += 1
                continue
            radius = sizes[i] / 2.0
            if radius > 0:
                quad = grid.gram / radius**2
                half = radius * grid.pixels_per_world
            else:
                quad, half = np.zeros((2, 2)), np.zeros(2)
            self.discs.append(_Disc(plane, center, half, quad, ab[i].astype(np.float32)))

    def __len__(self) -> int:
        return len(self.discs)

    @property
    def planes(self) -> set[tuple[int, ...]]:
        """The planes (leading indices) that hold at least one hint."""
        return {d.plane for d in self.discs}

    def _paint_plane(self, index: tuple[int, ...], out: np.ndarray) -> None:
        for disc in self.discs:
            if disc.plane == index:
                _paint(out, disc)


def _paint(out: np.ndarray, disc: _Disc) -> None:
    h, w = out.shape[:2]
    cy, cx = disc.center
    ry, rx = disc.half_extent
    y0, y1 = max(0, math.ceil(cy - ry)), min(h - 1, math.floor(cy + ry))
    x0, x1 = max(0, math.ceil(cx - rx)), min(w - 1, math.floor(cx + rx))
    inside = None
    if y0 <= y1 and x0 <= x1:
        dy = np.arange(y0, y1 + 1, dtype=float)[:, None] - cy
        dx = np.arange(x0, x1 + 1, dtype=float)[None, :] - cx
        q = disc.quad
        inside = q[0, 0] * dy * dy + (q[0, 1] + q[1, 0]) * dy * dx + q[1, 1] * dx * dx <= 1.0
    if inside is None or not inside.any():
        # smaller than a pixel: the pixel the point lies in
        y, x = min(h - 1, max(0, round(cy))), min(w - 1, max(0, round(cx)))
        out[y, x, :2] = disc.ab
        out[y, x, 2] = 1.0
        return
    region = out[y0 : y1 + 1, x0 : x1 + 1]
    region[inside, 0] = disc.ab[0]
    region[inside, 1] = disc.ab[1]
    region[inside, 2] = 1.0


@runtime_checkable
class HintSource(Protocol):
    """What :class:`~napari_colorize.inference.Colorizer` takes as ``hints=`` besides arrays.

    Any object with ``leading_shape`` (the image's stack axes), ``plane(index)``
    (one plane's ``(H, W, 3)`` hint map) and ``stack()`` (every plane, made
    on demand): :class:`PointHints`, :class:`~napari_colorize.scribbles.ShapeHints`,
    :class:`~napari_colorize.scribbles.LabelHints`.
    """

    leading_shape: tuple[int, ...]

    def plane(self, index: Sequence[int] = (), out: np.ndarray | None = None) -> np.ndarray: ...

    def stack(self) -> HintStack: ...


class HintStack:
    """The hint maps of every plane of a stack, made on demand (``leading + (H, W, 3)``).

    Indexing with a tuple of leading indices gives that plane's ``(H, W, 3)``
    map, which is what :class:`~napari_colorize.inference.Colorizer` asks for,
    so a large stack never holds its hints in memory. ``hints`` is a
    :class:`HintSource` that also has ``spatial_shape`` and ``planes`` (the
    planes holding hints).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, hints: HintSource):
        self.hints = hints
        self.shape = (*hints.leading_shape, *hints.spatial_shape, HINT_CHANNELS)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if not isinstance(index, tuple):
            index = (index,)
        n = len(self.hints.leading_shape)
        if len(index) == n and all(isinstance(i, (int, np.integer)) for i in index):
            return self.hints.plane(index)
        return np.asarray(self)[index]

    def __array__(self, dtype=None, copy=None):
        out = np.zeros(self.shape, dtype=np.float32)
        for plane in self.hints.planes:
            self.hints.plane(plane, out=out[plane])
        return out if dtype is None else out.astype(dtype)


_CSV_REQUIRED = ("row", "col", "r", "g", "b")


def read_hints_csv(path, image_shape, *, default_size: float = 1.0) -> PointHints:
    """Colour hints from a CSV file, placed on an image of ``image_shape``.

    The file has a header naming its columns: ``row,col,r,g,b`` (pixel
    position, colour in 0-255), optionally ``size`` (disc diameter in pixels)
    and, before ``row``, one column per leading axis of a stack giving the
    plane (e.g. ``t,row,col,r,g,b``).

    Parameters
    ----------
    path : path-like
    image_shape : sequence of int
        ``(H, W)`` or ``leading + (H, W)`` (without a colour axis).
    default_size : float
        Diameter of hints without a ``size``.

    Returns
    -------
    PointHints

    Raises
    ------
    ValueError
        A missing header or column, a value that is not a number, a colour
        outside 0-255, or plane columns that do not match the image's axes.
    """
    import csv
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the hints file {path}: {exc}") from None
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"the hints file {path} is empty; it needs a header row,col,r,g,b")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if missing:
        raise ValueError(
            f"the hints file {path} has columns {header}; it needs a header with "
            f"row,col,r,g,b (missing: {', '.join(missing)}), optionally size and leading "
            "plane columns before row"
        )
    shape = tuple(int(n) for n in image_shape)
    leading = header[: header.index("row")]
    if len(leading) != len(shape) - 2:
        raise ValueError(
            f"the hints file {path} gives {len(leading)} plane column(s) ({', '.join(leading)}) "
            f"before row, but the image has {len(shape) - 2} leading axis/axes (shape {shape})"
        )
    try:
        values = np.array([[float(c) for c in r] for r in rows[1:]], dtype=float)
    except ValueError as exc:
        raise ValueError(
            f"the hints file {path} holds a value that is not a number: {exc}"
        ) from None
    if values.size == 0:
        values = values.reshape(0, len(header))
    if values.shape[1:] != (len(header),):
        raise ValueError(f"every row of the hints file {path} needs {len(header)} values")
    col = {name: values[:, i] for i, name in enumerate(header)}
    colors = np.stack([col["r"], col["g"], col["b"]], axis=1)
    if np.any(colors < 0) or np.any(colors > 255) or not np.all(np.isfinite(colors)):
        raise ValueError(f"the colours in the hints file {path} must be 0-255")
    points = np.stack([col[name] for name in (*leading, "row", "col")], axis=1)
    sizes = col.get("size", np.full(len(values), float(default_size)))
    return PointHints(points, colors / 255.0, sizes, shape)


def points_to_hints(
    points,
    colors,
    sizes,
    image_shape,
    *,
    scale=None,
    translate=None,
    matrix=None,
    plane: Sequence[int] | None = None,
):
    """Hints from points at an image's pixel grid, in the package's hint format.

    Parameters
    ----------
    points, colors, sizes, image_shape, scale, translate, matrix
        See :class:`PointHints`: world positions ``(N, D)``, RGB(A) face colours,
        diameters in world units, and the image layer's shape and transform.
    plane : tuple of int, optional
        For a stack: the plane to make (its leading indices). ``None`` gives
        every plane, as a lazy :class:`HintStack`.

    Returns
    -------
    numpy.ndarray or HintStack
        float32 ``(H, W, 3)``: ``ab_to_net(ab)`` of each point's colour in
        channels 0-1 over its disc, mask 1 there and 0 elsewhere in channel 2.

    Examples
    --------
    >>> hints = points_to_hints([[10, 12]], [[1, 0, 0, 1]], 5, (32, 32))
    >>> hints.shape, int(hints[..., 2].sum())
    ((32, 32, 3), 21)
    """
    ph = PointHints(
        points, colors, sizes, image_shape, scale=scale, translate=translate, matrix=matrix
    )
    if plane is None and ph.leading_shape:
        return ph.stack()
    return ph.plane(() if plane is None else tuple(plane))


# ------------------------------------------------------------------ which models take hints


def model_takes_hints(name_or_path) -> bool:
    """Whether a registered model or checkpoint file takes hints, from its metadata only.

    No weights are read and nothing is downloaded: a checkpoint's
    ``extra["hints"]``, a registry entry's own ``extra``, or the architecture
    (``siggraph17`` always does) decide.

    Parameters
    ----------
    name_or_path : str or path-like

    Returns
    -------
    bool
        False also when the model is unknown or its file unreadable.
    """
    import os
    from pathlib import Path

    from . import checkpoint, registry
    from .errors import ColorizeError
    from .model_entries import local_file

    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    arch = None
    try:
        if not path.is_file():
            entry = registry.get_model(text)
            if entry.extra.get("hints"):
                return True
            arch = entry.arch
            local = local_file(entry)
            path = local if local is not None else None
        if path is not None:
            meta = checkpoint.read_metadata(path)
            if (meta.extra or {}).get("hints"):
                return True
            arch = meta.arch or arch
    except (ColorizeError, OSError, ValueError):
        return False
    return arch == "siggraph17"
