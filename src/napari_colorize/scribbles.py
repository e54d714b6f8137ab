"""Scribbled colour hints: shapes and labels to the package's hint format.

Scribbles give a colour over an area or along a stroke rather than at points:

- :class:`ShapeHints`: shapes as a napari Shapes layer holds them (vertices in
  world coordinates, a type, edge and face colours, edge widths). A closed
  shape (polygon, rectangle, ellipse) hints its face colour over its area; a
  path or a line hints its edge colour along a stroke of its edge width, and
  so does the outline of a closed shape whose face is transparent.
- :class:`LabelHints`: an integer labels array and a colour per label (napari:
  a Labels layer and its colormap); every pixel of a label other than 0 hints
  that label's colour. The labels are resampled (nearest neighbour) onto the
  image's pixel grid through both layers' transforms.

Both place their hints on an image layer's pixel grid as
:class:`~napari_colorize.hints.PointHints` does, and make the same maps plane by
plane (``plane``, ``stack``, ``leading_shape``: the
:class:`~napari_colorize.hints.HintSource` rule), so
:class:`~napari_colorize.inference.Colorizer` takes them as ``hints=``. Only a
colour's ab counts (the image keeps its own lightness); a colour whose alpha is
0 hints nothing, as napari draws it transparent. Nothing here imports Qt or
napari.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .color import AB_SCALE, rgb_to_lab
from .hints import PixelGrid, PlaneHints, data_to_world_matrix
from .models.hint_format import HINT_CHANNELS

__all__ = ["SHAPE_TYPES", "LabelHints", "ShapeHints"]

#: Shape types of napari's Shapes layer.
SHAPE_TYPES = ("path", "line", "polygon", "rectangle", "ellipse")
_CLOSED = ("polygon", "rectangle", "ellipse")
#: Rows of a plane resampled at a time from labels on another grid (bounds temporary memory).
_ROWS = 256
#: Largest label value looked up through a dense table; larger ones go through np.unique.
_DENSE_LABELS = 1 << 20


# ------------------------------------------------------------------ shared


def _rgba(colors, n: int, what: str) -> np.ndarray:
    """``(n, 4)`` RGBA in [0, 1] from one colour or one per row (RGB gets alpha 1)."""
    try:
        c = np.asarray(colors, dtype=float)
    except (TypeError, ValueError):  # rows of RGB and RGBA mixed?
        try:
            rows = [np.asarray(row, dtype=float) for row in colors]
            c = np.array([np.append(r, 1.0) if r.shape == (3,) else r for r in rows])
        except (TypeError, ValueError):
            raise ValueError(
                f"{what} must be RGB or RGBA values in [0, 1], got {colors!r}"
            ) from None
    if c.ndim == 1 and c.shape[0] in (3, 4):
        c = np.broadcast_to(c, (n, c.shape[0]))
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
        raise ValueError(
            f"{what} must be RGB or RGBA values in [0, 1], one colour or one row per item: "
            f"shape ({n}, 3) or ({n}, 4), got {c.shape}"
        )
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{what} hold NaN or infinite values")
    if c.shape[1] == 3:
        c = np.hstack([c, np.ones((n, 1))])
    return np.clip(c, 0.0, 1.0)


def _hint_rows(rgba: np.ndarray) -> np.ndarray:
    """``(n, 3)`` float32 hint values (ab, mask) of RGBA colours; transparent ones are 0."""
    rows = np.zeros((len(rgba), HINT_CHANNELS), dtype=np.float32)
    if len(rgba):
        rows[:, :2] = rgb_to_lab(rgba[:, :3])[:, 1:] / AB_SCALE
        rows[:, 2] = 1.0
        rows[rgba[:, 3] <= 0] = 0.0
    return rows


# ------------------------------------------------------------------ shapes


@dataclass(frozen=True)
class _Mark:
    """One shape as it paints the image's planes ``lo`` to ``hi``."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]
    kind: str  # "fill" (polygon), "ellipse" or "stroke"
    points: np.ndarray  # (k, 2) row, column in pixels
    closed: bool  # a stroke that also joins the last point to the first
    radius: float  # a stroke's half-width in world units
    hint: np.ndarray  # (3,) ab, mask


def _corners(v: np.ndarray, shape_type: str) -> np.ndarray:
    """Four corners (world) of a rectangle or ellipse given by two rows, as napari takes them."""
    a, b = v
    if shape_type == "ellipse":  # centre and radii
        a, b = a - np.abs(b), a + np.abs(b)
    corners = np.repeat(a[None], 4, axis=0)
    corners[1, -2], corners[2, -2:], corners[3, -1] = b[-2], b[-2:], b[-1]
    return corners


def _check_vertices(v: np.ndarray, shape_type: str, i: int) -> np.ndarray:
    n = len(v)
    if shape_type in ("rectangle", "ellipse") and n == 2:
        return _corners(v, shape_type)
    wanted = {"path": n >= 1, "line": n == 2, "polygon": n >= 3}.get(shape_type, n == 4)
    if not wanted:
        need = {"path": "1 or more", "line": "2", "polygon": "3 or more"}
        raise ValueError(
            f"shape {i} is a {shape_type} with {n} vertices; a {shape_type} has "
            f"{need.get(shape_type, '4 (corners) or 2')} vertices"
        )
    return v


class ShapeHints(PlaneHints):
    """Shapes in world coordinates, as colour hints on the pixel grid of one image layer.

    A closed shape (``polygon``, ``rectangle``, ``ellipse``) paints its face
    colour over the pixels whose centres it covers; a ``path`` or ``line``
    paints its edge colour along a stroke whose width is its edge width in
    world units (round ends and joins), and a closed shape with a transparent
    face (alpha 0) paints its outline so. A stroke narrower than a pixel still
    paints a one-pixel line, a closed shape covering no pixel centre its
    outline. Shapes are mapped through the image's transform (an ellipse stays
    the ellipse inscribed in its transformed corners), so they cover what they
    cover on screen whatever the image's scale, translate or affine. In a
    stack a shape hints every plane its vertices span (rounded), as napari
    shows it; where shapes overlap the later one wins.

    Parameters
    ----------
    shapes : sequence of array-like
        One ``(V, D)`` array of vertices per shape, in world coordinates
        (napari: the layer's ``data`` through its data-to-world transform). With
        ``D`` larger than the image's axes the last ones are used. Rectangles
        and ellipses are their four corners in order (napari's ``data``), or
        two rows: opposite corners of a rectangle, centre and radii of an
        ellipse, along the world axes.
    shape_types : str or sequence of str
        One of :data:`SHAPE_TYPES` for all shapes, or one per shape.
    edge_colors, face_colors : array-like
        RGB(A) in [0, 1], one colour or ``(N, 3)``/``(N, 4)`` (napari's
        ``edge_color`` and ``face_color``).
    edge_widths : float or array-like
        Stroke widths in world units, one or one per shape.
    image_shape : sequence of int
        The image layer's shape without its colour axis: ``(H, W)`` or
        ``leading + (H, W)``.
    scale, translate, matrix
        The image layer's data-to-world transform (see
        :func:`~napari_colorize.hints.data_to_world_matrix`).

    Attributes
    ----------
    marks : list
        The shapes that hint the image, in order.
    n_ignored : int
        Shapes outside the image (or its planes), with non-finite vertices, or transparent.

    Examples
    --------
    >>> stroke = [[[10, 5], [10, 60], [30, 60]]]
    >>> hints = ShapeHints(stroke, "path", [1, 0, 0], [1, 1, 1], 4, (64, 64))
    >>> hints.plane().shape
    (64, 64, 3)
    """

    def __init__(
        self,
        shapes,
        shape_types,
        edge_colors,
        face_colors,
        edge_widths,
        image_shape,
        *,
        scale=None,
        translate=None,
        matrix=None,
    ):
        grid = PixelGrid(image_shape, scale, translate, matrix)
        super().__init__(grid)
        if isinstance(shapes, np.ndarray) and shapes.ndim == 2:
            shapes = [shapes]  # one shape
        shapes = list(shapes)
        n = len(shapes)
        types = [shape_types] * n if isinstance(shape_types, str) else list(shape_types)
        if len(types) != n:
            raise ValueError(f"shape_types must be one type or one per shape ({n}), got {types}")
        types = [str(t).lower() for t in types]
        unknown = sorted(set(types) - set(SHAPE_TYPES))
        if unknown:
            raise ValueError(f"unknown shape type(s) {unknown}; expected one of {SHAPE_TYPES}")
        edges = _rgba(edge_colors, n, "edge colours")
        faces = _rgba(face_colors, n, "face colours")
        widths = np.asarray(edge_widths, dtype=float)
        widths = np.full(n, float(widths)) if widths.ndim == 0 else widths
        if widths.shape != (n,) or not np.all(np.isfinite(widths)) or np.any(widths < 0):
            raise ValueError(
                f"edge widths must be one number or one per shape ({n}), finite, >= 0"
            )
        nd = grid.ndim
        self.marks: list[_Mark] = []
        self.n_ignored = 0
        for i, (vertices, shape_type) in enumerate(zip(shapes, types)):
            v = np.asarray(vertices, dtype=float)
            if v.ndim != 2 or v.shape[1] < nd:
                raise ValueError(
                    f"shape {i} must be (V, D) world coordinates with D >= {nd} (the image's "
                    f"axes), got shape {v.shape}"
                )
            v = _check_vertices(v[:, -nd:], shape_type, i)
            mark = self._mark(grid.to_pixels(v), shape_type, edges[i], faces[i], widths[i])
            if mark is None:
                self.n_ignored += 1
            else:
                self.marks.append(mark)

    def _mark(self, px, shape_type, edge, face, width) -> _Mark | None:
        grid = self._grid
        if not np.all(np.isfinite(px)):
            return None
        lead = px[:, :-2]
        lo = tuple(int(v) for v in np.floor(lead.min(axis=0) + 0.5))
        hi = tuple(int(v) for v in np.floor(lead.max(axis=0) + 0.5))
        if not grid.plane_range(lo, hi):
            return None
        points = px[:, -2:]
        if shape_type in _CLOSED and face[3] > 0:
            kind, colour, radius = ("ellipse" if shape_type == "ellipse" else "fill"), face, 0.0
        elif edge[3] > 0:
            kind, colour, radius = "stroke", edge, width / 2.0
        else:
            return None  # transparent: napari shows nothing
        reach = radius * grid.pixels_per_world + 0.5
        (h, w) = self.spatial_shape
        low, high = points.min(axis=0) - reach, points.max(axis=0) + reach
        if high[0] < -0.5 or high[1] < -0.5 or low[0] > h - 0.5 or low[1] > w - 0.5:
            return None
        hint = _hint_rows(colour[None])[0]
        return _Mark(lo, hi, kind, points, shape_type in _CLOSED, radius, hint)

    def __len__(self) -> int:
        return len(self.marks)

    @property
    def planes(self) -> set[tuple[int, ...]]:
        """The planes (leading indices) that hold at least one shape."""
        return {p for m in self.marks for p in self._grid.plane_range(m.lo, m.hi)}

    def _paint_plane(self, index: tuple[int, ...], out: np.ndarray) -> None:
        for mark in self.marks:
            if all(a <= i <= b for a, i, b in zip(mark.lo, index, mark.hi)):
                self._paint(out, mark)

    def _paint(self, out: np.ndarray, mark: _Mark) -> None:
        if mark.kind == "stroke":
            _stroke(out, mark.points, mark.closed, mark.radius, self._grid, mark.hint)
            return
        if mark.kind == "fill":
            inside = _polygon(out.shape[:2], mark.points)
        else:
            inside = _ellipse(out.shape[:2], mark.points)
        if inside is None:  # covers no pixel centre: its outline, one pixel wide
            _stroke(out, mark.points, True, 0.0, self._grid, mark.hint)
        else:
            out[inside] = mark.hint


def _polygon(shape, points):
    from skimage.draw import polygon

    rr, cc = polygon(points[:, 0], points[:, 1], shape=shape)
    return (rr, cc) if len(rr) else None


def _ellipse(shape, corners):
    """Pixels inside the ellipse inscribed in four corners (touching their sides' midpoints).

    An affine transform maps that ellipse onto the one inscribed in the
    transformed corners, so it is tested exactly here rather than drawn with
    axis radii and a rotation.
    """
    centre = corners.mean(axis=0)
    axes = np.column_stack(
        [(corners[1] + corners[2]) / 2 - centre, (corners[2] + corners[3]) / 2 - centre]
    )
    if abs(np.linalg.det(axes)) < 1e-12:
        return None
    inv = np.linalg.inv(axes)
    reach = np.sqrt((axes**2).sum(axis=1))
    y0, x0 = (max(0, int(np.ceil(c - r))) for c, r in zip(centre, reach))
    y1, x1 = (min(n - 1, int(np.floor(c + r))) for c, r, n in zip(centre, reach, shape))
    if y0 > y1 or x0 > x1:
        return None
    dy = np.arange(y0, y1 + 1, dtype=float)[:, None] - centre[0]
    dx = np.arange(x0, x1 + 1, dtype=float)[None, :] - centre[1]
    u = inv[0, 0] * dy + inv[0, 1] * dx
    v = inv[1, 0] * dy + inv[1, 1] * dx
    rr, cc = np.nonzero(u * u + v * v <= 1.0)
    return (rr + y0, cc + x0) if len(rr) else None


def _stroke(out, points, closed, radius, grid: PixelGrid, hint) -> None:
    """Paint the pixels within ``radius`` (world units) of a polyline, and the line itself.

    Distances are measured in world units, so a stroke keeps its width on
    non-square or sheared pixels; pixel centres within half a pixel of the
    line are painted too, so a thin stroke leaves a connected line.
    """
    h, w = out.shape[:2]
    g = grid.gram
    reach = radius * grid.pixels_per_world + 0.5
    ends = [*points[1:], points[0]] if closed and len(points) > 2 else points[1:]
    segments = list(zip(points, ends)) or [(points[0], points[0])]
    for a, b in segments:
        low = np.floor(np.minimum(a, b) - reach)
        high = np.ceil(np.maximum(a, b) + reach)
        y0, x0 = max(0, int(low[0])), max(0, int(low[1]))
        y1, x1 = min(h - 1, int(high[0])), min(w - 1, int(high[1]))
        if y0 > y1 or x0 > x1:
            continue
        dy = np.arange(y0, y1 + 1, dtype=float)[:, None] - a[0]
        dx = np.arange(x0, x1 + 1, dtype=float)[None, :] - a[1]
        s = b - a
        inside = _within(dy, dx, s, np.eye(2), 0.5)
        if radius > 0:
            inside |= _within(dy, dx, s, g, radius)
        region = out[y0 : y1 + 1, x0 : x1 + 1]
        region[inside] = hint


def _within(dy, dx, s, metric, radius):
    """Whether offsets (dy, dx) from a segment's start lie within ``radius`` of the segment."""
    gs = metric @ s
    length2 = float(s @ gs)
    t = np.clip((dy * gs[0] + dx * gs[1]) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    ey, ex = dy - t * s[0], dx - t * s[1]
    d2 = metric[0, 0] * ey * ey + (metric[0, 1] + metric[1, 0]) * ey * ex + metric[1, 1] * ex * ex
    return d2 <= radius * radius


# ------------------------------------------------------------------ labels


def _label_colors(colors) -> Callable[[np.ndarray], np.ndarray]:
    """A function from label values to ``(k, 4)`` RGBA, from what users pass."""
    if callable(colors):

        def call(values):
            return _rgba(colors(values), len(values), "label colours")

        return call
    if isinstance(colors, Mapping):
        table = {int(k): _rgba(v, 1, f"the colour of label {k}")[0] for k, v in colors.items()}

        def look_up(values):
            missing = [int(v) for v in values if int(v) not in table and v != 0]
            if missing:
                raise ValueError(f"label(s) {missing[:5]} have no colour in colors")
            return np.array([table.get(int(v), np.zeros(4)) for v in values]).reshape(-1, 4)

        return look_up
    lut = np.asarray(colors, dtype=float)
    if lut.ndim != 2:
        raise ValueError(
            "colors must be a mapping {label: colour}, a table with one RGB(A) row per label "
            f"or a function of the labels, got an array of shape {lut.shape}"
        )
    lut = _rgba(lut, len(lut), "label colours (one row per label)")

    def index(values):
        if len(values) and (values.min() < 0 or values.max() >= len(lut)):
            bad = values[(values < 0) | (values >= len(lut))]
            raise ValueError(
                f"label(s) {bad[:5].tolist()} have no row in the {len(lut)} label colours"
            )
        return lut[values]

    return index


class LabelHints(PlaneHints):
    """A labels array as colour hints on the pixel grid of one image layer.

    Every pixel of a label other than 0 hints that label's colour (a
    transparent one, alpha 0, hints nothing). The labels may lie on their own
    grid (napari: a Labels layer with its own scale, translate or affine):
    each image pixel takes the label at its centre (nearest neighbour). The
    labels are read plane by plane, so numpy, dask and zarr arrays work and
    a large stack is never read whole.

    Parameters
    ----------
    labels : array-like
        Integer labels with one axis per image axis, ``(H', W')`` or
        ``leading + (H', W')`` (for a 2D labels array over a stack, add the
        leading axes: ``labels[None]`` with a translate placing it on a plane,
        or ``np.broadcast_to`` for every plane).
    colors : mapping, array-like or callable
        The colour of each label, RGB(A) in [0, 1]: a mapping ``{label:
        colour}``, an ``(N, 3)``/``(N, 4)`` table whose row ``i`` is label
        ``i``'s colour, or a function from an integer array of labels to their
        ``(k, 3)``/``(k, 4)`` colours (napari: ``layer.colormap.map``).
    image_shape : sequence of int
        The image layer's shape without its colour axis.
    scale, translate, matrix
        The image layer's data-to-world transform (see
        :func:`~napari_colorize.hints.data_to_world_matrix`).
    labels_scale, labels_translate, labels_matrix
        The labels' own data-to-world transform; default: the identity.

    Examples
    --------
    >>> labels = np.zeros((32, 32), np.uint8)
    >>> labels[:, :8], labels[:, -8:] = 1, 2
    >>> hints = LabelHints(labels, {1: [1, 0, 0], 2: [0, 0, 1]}, (32, 32))
    >>> float(hints.plane()[..., 2].mean())
    0.5
    """

    def __init__(
        self,
        labels,
        colors,
        image_shape,
        *,
        scale=None,
        translate=None,
        matrix=None,
        labels_scale=None,
        labels_translate=None,
        labels_matrix=None,
    ):
        grid = PixelGrid(image_shape, scale, translate, matrix)
        super().__init__(grid)
        if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
            labels = np.asarray(labels)
        shape = tuple(int(n) for n in labels.shape)
        if np.dtype(labels.dtype).kind not in "iu":
            raise ValueError(f"labels must be integers (0: no hint), got dtype {labels.dtype}")
        if len(shape) != grid.ndim:
            raise ValueError(
                f"labels of shape {shape} have {len(shape)} axes, the image {grid.shape} has "
                f"{grid.ndim}: give the labels one axis per image axis (labels[None] for one "
                "plane of a stack, np.broadcast_to for every plane)"
            )
        if min(shape) < 1:
            raise ValueError(f"the labels are empty: shape {shape}")
        to_world = data_to_world_matrix(grid.ndim, labels_scale, labels_translate, labels_matrix)
        try:
            to_labels = np.linalg.inv(to_world)
        except np.linalg.LinAlgError:
            raise ValueError("the labels' transform cannot be inverted") from None
        self.labels = labels
        self.labels_shape = shape
        #: image data coordinates -> labels data coordinates (homogeneous)
        self.to_labels = to_labels @ grid.to_world
        self._same_grid = shape == grid.shape and np.allclose(
            self.to_labels, np.eye(grid.ndim + 1), atol=1e-9
        )
        self._colors = _label_colors(colors)

    @property
    def planes(self) -> set[tuple[int, ...]]:
        """Every plane of the image (any may hold labels)."""
        return set(itertools.product(*(range(n) for n in self.leading_shape)))

    def labels_on_grid(self, index: Sequence[int] = ()) -> np.ndarray:
        """The labels of one image plane on the image's pixel grid, ``(H, W)``; 0 outside."""
        index = self._index(index)
        if self._same_grid:
            return np.asarray(self.labels[index])
        nd = self._grid.ndim
        h, w = self.spatial_shape
        m = self.to_labels
        bounds = np.asarray(self.labels_shape, dtype=float)[:, None, None]
        base = m[:nd, : nd - 2] @ np.asarray(index, dtype=float) + m[:nd, nd]
        cols = np.arange(w, dtype=float)[None, None, :]
        out = np.zeros((h, w), dtype=self.labels.dtype)
        for r0 in range(0, h, _ROWS):
            rows = np.arange(r0, min(h, r0 + _ROWS), dtype=float)[None, :, None]
            coords = base[:, None, None] + m[:nd, nd - 2, None, None] * rows
            coords = coords + m[:nd, nd - 1, None, None] * cols
            where = np.floor(np.clip(coords, -1.0, bounds) + 0.5).astype(np.int64)
            valid = np.all((where >= 0) & (where < bounds), axis=0)
            if not valid.any():
                continue
            at = where[:, valid]
            low, high = at.min(axis=1), at.max(axis=1) + 1
            block = np.asarray(self.labels[tuple(slice(a, b) for a, b in zip(low, high))])
            out[r0 : r0 + rows.shape[1]][valid] = block[tuple(at - low[:, None])]
        return out

    def _paint_plane(self, index: tuple[int, ...], out: np.ndarray) -> None:
        values = self.labels_on_grid(index).astype(np.int64, copy=False)
        low, high = int(values.min()), int(values.max())
        if low == high == 0:
            return
        if low >= 0 and high < _DENSE_LABELS:
            present = np.zeros(high + 1, dtype=bool)
            present[values.ravel()] = True
            present[0] = False
            ids = np.flatnonzero(present)
            table = np.zeros((high + 1, HINT_CHANNELS), dtype=np.float32)
            table[ids] = _hint_rows(self._colors(ids))
            out[...] = table[values]
        else:
            ids, inverse = np.unique(values, return_inverse=True)
            rows = _hint_rows(self._colors(ids))
            rows[ids == 0] = 0.0
            out[...] = rows[inverse.reshape(values.shape)]
