"""Hint points that stay usable: sized for the image, coloured one at a time, kept on top.

napari gives a new Points layer a size of 10 data units whatever the image
(half of a 24-pixel punk), recolours the *selected* points when its face
colour changes (a point just added is selected), and adds a result layer
above the hints, hiding them. These helpers size the next points for the
image, set the next point's colour without touching the selected ones, and
keep the hint layer above the results.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Points

from ._hint_layers import _world_scale

__all__ = [
    "NAPARI_DEFAULT_SIZE",
    "NEXT_COLORS",
    "OTHER_COLOR",
    "POINT_SIZE_FRACTION",
    "NextPointColor",
    "ask_color",
    "color_choices",
    "default_point_size",
    "fit_point_size",
    "keep_hints_above",
    "paint_swatches",
    "set_next_color",
]

#: The size napari gives the points of a new layer.
NAPARI_DEFAULT_SIZE = 10
#: A hint point's default diameter: this fraction of the image's shorter side.
POINT_SIZE_FRACTION = 0.015
#: Colours offered for the next hint point: (label, RGBA).
NEXT_COLORS = [
    ("red", (0.9, 0.1, 0.1, 1.0)),
    ("orange", (1.0, 0.55, 0.0, 1.0)),
    ("yellow", (1.0, 0.9, 0.1, 1.0)),
    ("green", (0.1, 0.7, 0.2, 1.0)),
    ("cyan", (0.0, 0.8, 0.9, 1.0)),
    ("blue", (0.1, 0.3, 0.95, 1.0)),
    ("purple", (0.55, 0.2, 0.8, 1.0)),
    ("pink", (1.0, 0.5, 0.7, 1.0)),
    ("brown", (0.55, 0.33, 0.15, 1.0)),
    ("skin", (0.93, 0.75, 0.6, 1.0)),
    ("white", (1.0, 1.0, 1.0, 1.0)),
    ("gray", (0.5, 0.5, 0.5, 1.0)),
    ("black", (0.0, 0.0, 0.0, 1.0)),
]
#: The entry of the colour menu that opens a colour dialog.
OTHER_COLOR = "other..."


def default_point_size(image, points) -> float:
    """The size (in ``points``' data units) of a hint point on ``image``.

    ``max(1, 1.5 %)`` of the image's shorter side, in image pixels: one pixel
    on a 24-pixel punk, 8 on a 512-pixel photo.

    Parameters
    ----------
    image : napari.layers.Image
    points : napari.layers.Points

    Returns
    -------
    float
    """
    shape = image.level_shapes[0][: image.ndim][-2:]
    pixels = max(1, round(POINT_SIZE_FRACTION * min(shape)))
    world = pixels * _world_scale(image)
    return float(world / _world_scale(points))


def fit_point_size(points, image) -> bool:
    """Give ``points``' next points the default size for ``image``, if napari's is still set.

    Existing and selected points keep their size. Returns whether the size changed.
    """
    if not isinstance(points, Points) or image is None:
        return False
    if not np.isclose(float(points.current_size), NAPARI_DEFAULT_SIZE):
        return False  # chosen by the user
    size = default_point_size(image, points)
    if np.isclose(size, NAPARI_DEFAULT_SIZE):
        return False
    with points.block_update_properties():  # the selected points keep their size
        points.current_size = size
    return True


def set_next_color(points, color) -> None:
    """The face colour of the next point added to ``points``; the selected points keep theirs."""
    with points.block_update_properties():
        points.current_face_color = color


def keep_hints_above(viewer, result, hints) -> bool:
    """Move ``result`` just below ``hints`` if it lies above it. Returns whether it moved."""
    layers = viewer.layers
    if hints is None or hints not in layers or result not in layers:
        return False
    at, hint_at = layers.index(result), layers.index(hints)
    if at < hint_at:
        return False
    layers.move(at, hint_at)
    return True


def color_choices(custom=()) -> list[tuple[str, tuple]]:
    """``(label, rgba)`` entries of the next-colour menu: the palette, then ``custom`` colours."""
    extra = [(_hex(rgba), tuple(rgba)) for rgba in custom]
    return [*NEXT_COLORS, *extra, (OTHER_COLOR, OTHER_COLOR)]


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(255 * float(v)):02x}" for v in rgba[:3])


def paint_swatches(combo) -> None:
    """Show each colour of a magicgui ComboBox of :func:`color_choices` as a swatch."""
    from qtpy.QtGui import QColor, QIcon, QPixmap

    native = combo.native
    for i in range(native.count()):
        rgba = native.itemData(i)
        if not isinstance(rgba, tuple):
            continue
        pixmap = QPixmap(12, 12)
        pixmap.fill(QColor.fromRgbF(*(float(v) for v in rgba)))
        native.setItemIcon(i, QIcon(pixmap))


def ask_color(parent, rgba):
    """A colour from Qt's colour dialog (None if cancelled)."""
    from qtpy.QtGui import QColor
    from qtpy.QtWidgets import QColorDialog

    chosen = QColorDialog.getColor(
        QColor.fromRgbF(*(float(v) for v in rgba)), parent, "Colour of the next hint point"
    )
    if not chosen.isValid():
        return None
    return (chosen.redF(), chosen.greenF(), chosen.blueF(), 1.0)


class NextPointColor:
    """The "next point colour" menu: sets the colour of the next hint point only.

    napari's own face-colour box recolours the selected points (and a point
    just added is selected); this menu never does.

    Parameters
    ----------
    parent_widget : callable
        Gives the QWidget the colour dialog is parented to.
    """

    TOOLTIP = (
        "Colour of the next hint point you add. The points already placed keep theirs "
        "(napari's own face colour box recolours the selected points, and a point just "
        "added is selected)."
    )

    def __init__(self, parent_widget=None):
        from magicgui.widgets import ComboBox

        self._custom: list[tuple] = []
        self._points = None
        self._previous = NEXT_COLORS[0][1]
        self._parent = parent_widget
        self.combo = ComboBox(
            name="next_color", label="next point colour",
            choices=lambda _w=None: color_choices(self._custom), value=self._previous,
            tooltip=self.TOOLTIP, enabled=False,
        )  # fmt: skip
        paint_swatches(self.combo)
        self.combo.changed.connect(self._on_changed)

    @property
    def color(self) -> tuple:
        """The RGBA of the next point."""
        return self._previous

    def set_points(self, layer) -> None:
        """Follow the hint layer: a Points layer gets the chosen colour for its next point."""
        self._points = layer if isinstance(layer, Points) else None
        self.combo.enabled = self._points is not None
        if self._points is not None:
            set_next_color(self._points, self._previous)

    def _on_changed(self, value=None) -> None:
        value = self.combo.value
        if value == OTHER_COLOR:
            parent = self._parent() if self._parent is not None else None
            value = ask_color(parent, self._previous)
            if value is None:
                self.combo.value = self._previous
                return
            if value not in self._custom:
                self._custom.append(value)
            self.combo.reset_choices()
            paint_swatches(self.combo)
            self.combo.value = value
            return
        self._previous = tuple(value)
        if self._points is not None:
            set_next_color(self._points, self._previous)
