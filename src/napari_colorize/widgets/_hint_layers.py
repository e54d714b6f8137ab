"""Colour-hint layers of the viewer (Points, Shapes, Labels) as the library's hint sources.

Each layer is read on the main thread into a
:class:`~napari_colorize.hints.HintSource` placed on the pixel grid of the
image being colorized (:class:`~napari_colorize.hints.PointHints`,
:class:`~napari_colorize.scribbles.ShapeHints`,
:class:`~napari_colorize.scribbles.LabelHints`); the hint maps themselves are
made later, plane by plane, in the worker. A hint layer with fewer axes than
the image (2D scribbles over a stack) hints the plane shown now.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels, Points, Shapes

__all__ = [
    "HINT_EVENTS",
    "HINT_LAYER_TYPES",
    "data_to_world",
    "hint_digest",
    "hint_events",
    "layer_hints",
    "selection_to_world",
]

#: Layer types whose content can be colour hints.
HINT_LAYER_TYPES = (Points, Shapes, Labels)
#: Events of each hint layer type that change its hints (live mode listens to them).
HINT_EVENTS = {
    Points: ("data", "face_color", "current_face_color", "size", "current_size"),
    Shapes: ("data", "edge_color", "face_color", "edge_width"),
    Labels: ("data", "paint", "colormap"),
}


def hint_events(layer) -> tuple[str, ...]:
    """The names of ``layer``'s events that change its hints."""
    for kind, names in HINT_EVENTS.items():
        if isinstance(layer, kind):
            return names
    return ()


def data_to_world(layer) -> np.ndarray:
    """A layer's full data-to-world transform (scale, translate, rotate, shear, affine)."""
    from napari.utils.transforms import CompositeAffine

    composite = CompositeAffine(
        scale=layer.scale, translate=layer.translate, rotate=layer.rotate,
        shear=layer.shear, ndim=layer.ndim,
    )  # fmt: skip
    return np.asarray(layer.affine.affine_matrix, dtype=float) @ composite.affine_matrix


def selection_to_world(layer, selection) -> np.ndarray:
    """Data-to-world transform of a selection (a pyramid level, a plane) of ``layer``."""
    n = layer.ndim
    to_level0 = np.eye(n + 1)
    to_level0[:n, :n] = np.diag(selection.factors)
    to_level0[:n, n] = selection.offset
    return data_to_world(layer) @ to_level0


def _to_world(layer, data: np.ndarray, image, world_point, matrix=None) -> np.ndarray:
    """``(N, D)`` data coordinates of ``layer`` in world coordinates, with the image's axes.

    Coordinates with fewer axes than the image get the leading world
    coordinates of the plane shown now. ``matrix``: the layer's
    :func:`data_to_world`, when known.
    """
    n = layer.ndim
    matrix = data_to_world(layer) if matrix is None else matrix
    data = np.asarray(data, dtype=float).reshape(-1, n)
    world = data @ matrix[:n, :n].T + matrix[:n, n]
    missing = image.ndim - n
    if missing > 0:
        leading = np.asarray(world_point[len(world_point) - image.ndim :][:missing], dtype=float)
        world = np.hstack([np.broadcast_to(leading, (len(world), missing)), world])
    return world


def _world_scale(layer) -> float:
    """World units per unit of ``layer``'s own sizes (napari draws sizes in data units)."""
    n = layer.ndim
    spatial = data_to_world(layer)[n - 2 : n, n - 2 : n]
    return float(np.sqrt(abs(np.linalg.det(spatial))))


def point_hints(points: Points, image, selection, world_point):
    """:class:`~napari_colorize.hints.PointHints` of ``points`` on the selected array."""
    from ..hints import PointHints

    world = _to_world(points, points.data, image, world_point)
    sizes = np.asarray(points.size, dtype=float) * _world_scale(points)
    return PointHints(
        world, np.asarray(points.face_color), sizes, selection.array.shape[: image.ndim],
        matrix=selection_to_world(image, selection),
    )  # fmt: skip


def shape_hints(shapes: Shapes, image, selection, world_point):
    """:class:`~napari_colorize.scribbles.ShapeHints` of ``shapes`` on the selected array."""
    from ..scribbles import ShapeHints

    order = np.argsort(np.asarray(shapes.z_index), kind="stable")  # napari draws higher on top
    matrix = data_to_world(shapes)
    vertices = [_to_world(shapes, shapes.data[i], image, world_point, matrix) for i in order]
    widths = np.asarray(shapes.edge_width, dtype=float).reshape(-1)[order]
    return ShapeHints(
        vertices,
        [shapes.shape_type[i] for i in order],
        np.asarray(shapes.edge_color).reshape(-1, 4)[order],
        np.asarray(shapes.face_color).reshape(-1, 4)[order],
        widths * _world_scale(shapes),
        selection.array.shape[: image.ndim],
        matrix=selection_to_world(image, selection),
    )


def label_hints(labels: Labels, image, selection, world_point):
    """:class:`~napari_colorize.scribbles.LabelHints` of ``labels`` on the selected array.

    Labels with fewer axes than the image lie on the plane shown now; with
    more, their plane shown now is taken.
    """
    from ..scribbles import LabelHints

    data = labels.data[0] if labels.multiscale else labels.data
    matrix = data_to_world(labels)
    n_l, n_i = labels.ndim, image.ndim
    if n_l < n_i:
        missing = n_i - n_l
        try:
            data = data[(None,) * missing]
        except (TypeError, IndexError, ValueError):  # arrays without new axes (zarr)
            data = np.asarray(data)[(None,) * missing]
        full = np.eye(n_i + 1)
        full[missing:, missing:] = matrix
        full[:missing, n_i] = np.asarray(world_point[len(world_point) - n_i :][:missing])
        matrix = full
    elif n_l > n_i:
        extra = n_l - n_i
        point = np.append(np.asarray(world_point[len(world_point) - n_l :], dtype=float), 1.0)
        at = (np.linalg.inv(matrix) @ point)[:extra]
        index = tuple(int(np.clip(np.floor(v + 0.5), 0, s - 1)) for v, s in zip(at, data.shape))
        data = data[index]
        keep = [*range(extra, n_l + 1)]
        matrix = matrix[np.ix_(keep, keep)]
    return LabelHints(
        data, labels.colormap.map, selection.array.shape[:n_i],
        matrix=selection_to_world(image, selection), labels_matrix=matrix,
    )  # fmt: skip


def layer_hints(layer, image, selection, world_point):
    """The hint source of a Points, Shapes or Labels ``layer`` on the selected image array.

    Parameters
    ----------
    layer : napari.layers.Points, Shapes or Labels
    image : napari.layers.Image
        The layer being colorized.
    selection : napari_colorize.layers.Selection
        What of it is colorized (a level, a plane).
    world_point : sequence of float
        The viewer's current point (``viewer.dims.point``).

    Returns
    -------
    napari_colorize.hints.HintSource
    """
    for kind, convert in ((Points, point_hints), (Shapes, shape_hints), (Labels, label_hints)):
        if isinstance(layer, kind):
            return convert(layer, image, selection, world_point)
    raise ValueError(
        f"layer {layer.name!r} is a {type(layer).__name__} layer; colour hints come from "
        "Points, Shapes or Labels layers"
    )


def hint_digest(layer) -> tuple | None:
    """A cheap fingerprint of what ``layer`` hints, or None where there is none (Labels).

    Live mode re-colorizes only when it changes; a Labels layer is too large
    to fingerprint on every edit, so its edits are counted instead.
    """
    if isinstance(layer, Points):
        parts = [layer.data, layer.face_color, layer.size]
    elif isinstance(layer, Shapes):
        parts = [
            *layer.data, np.asarray(layer.shape_type, dtype=str), layer.edge_color,
            layer.face_color, layer.edge_width, layer.z_index,
        ]  # fmt: skip
    else:
        return None
    return tuple(hash(np.ascontiguousarray(np.asarray(p)).tobytes()) for p in parts)
