"""Helpers the widgets share for reading layers and writing their output layers.

Only the napari side lives here (reading a layer's geometry, finding and
replacing an output layer, the Lab colormaps as napari objects); the decisions
themselves are made by :mod:`napari_colorize.layers` on plain values.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..layers import LAB_CHANNELS, LAB_CONTRAST_LIMITS, METADATA_KEY, lab_colormap_colors


def compact_combos(*combos, characters: int = 16) -> None:
    """Let combo boxes be narrow: long entries (file paths, GPU names) must not widen the dock."""
    from qtpy.QtWidgets import QComboBox

    policy = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
    for combo in combos:
        combo.native.setSizeAdjustPolicy(policy)
        combo.native.setMinimumContentsLength(characters)


def _fit_height(qlabel) -> None:
    height = qlabel.heightForWidth(qlabel.width())
    if height > 0 and qlabel.minimumHeight() != height:
        qlabel.setMinimumHeight(height)


@cache
def _fit_height_filter_class():
    from qtpy.QtCore import QEvent, QObject

    class FitHeight(QObject):
        """Keeps a word-wrapped label as tall as its text at its current width."""

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Resize:
                _fit_height(obj)
            return False

    return FitHeight


def wrapping_label(label) -> None:
    """Let a status label wrap instead of widening the dock with a long message.

    The label takes the width it is given (never asking for more) and grows in
    height to show all of its text: magicgui's labelled rows do not pass
    Qt's height-for-width on, so the height is set from the text at each
    resize and each change of text.
    """
    from qtpy.QtWidgets import QSizePolicy

    qlabel = label.native
    qlabel.setWordWrap(True)
    policy = qlabel.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    qlabel.setSizePolicy(policy)
    fit = _fit_height_filter_class()(qlabel)  # parented to the label: lives as long
    qlabel.installEventFilter(fit)
    label.changed.connect(lambda *_: _fit_height(qlabel))


def scroll_rows(container, min_width: int = 300) -> None:
    """Put a dock widget's rows in a vertical scroll area; call it last in ``__init__``.

    napari docks ``container.native`` as it is, so a form taller than the
    screen is cut off (and magicgui's ``scrollable=True`` is lost, as napari
    docks the inner widget). The rows' layout moves into a ``QScrollArea``
    inside ``container.native``; widgets the container adds later land there
    too. ``min_width`` keeps the rows readable when the dock is narrowed.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QSizePolicy, QVBoxLayout, QWidget

    outer = container.native
    rows = outer.layout()
    body = QWidget()
    body.setLayout(rows)  # Qt moves the layout and re-parents its widgets
    growing = {QSizePolicy.Policy.Expanding, QSizePolicy.Policy.MinimumExpanding}
    items = (rows.itemAt(i).widget() for i in range(rows.count()))
    if not any(w is not None and w.sizePolicy().verticalPolicy() in growing for w in items):
        rows.addStretch()  # what napari adds to a dock that does not grow: rows at the top
    scroll = _rows_scroll_class()(min_width)
    scroll.setObjectName("napari_colorize_scroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    scroll.setWidget(body)
    layout = QVBoxLayout(outer)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(scroll)


@cache
def _rows_scroll_class():
    """A vertical scroll area as wide as its rows need (their styled size, known only late)."""
    from qtpy.QtWidgets import QScrollArea

    class RowsScroll(QScrollArea):
        def __init__(self, min_width: int):
            super().__init__()
            self._min_width = min_width

        def _width_for(self, rows_width: int) -> int:
            bar = self.verticalScrollBar().sizeHint().width()
            return max(self._min_width, rows_width + bar + 2 * self.frameWidth())

        def minimumSizeHint(self):
            hint = super().minimumSizeHint()
            if self.widget() is not None:
                hint.setWidth(self._width_for(self.widget().minimumSizeHint().width()))
            return hint

        def sizeHint(self):
            hint = super().sizeHint()
            if self.widget() is not None:
                hint.setWidth(self._width_for(self.widget().sizeHint().width()))
            return hint

    return RowsScroll


def is_plugin_output(layer) -> bool:
    """Whether one of this plugin's widgets made ``layer`` (a result, preview or channel)."""
    mark = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}
    return bool(mark.get("role"))


def layer_geometry(layer) -> dict:
    """A layer's scale, translate, rotate, shear and affine as plain arrays."""
    return {
        "scale": np.asarray(layer.scale, dtype=float),
        "translate": np.asarray(layer.translate, dtype=float),
        "rotate": np.asarray(layer.rotate, dtype=float),
        "shear": np.asarray(layer.shear, dtype=float),
        "affine": np.asarray(layer.affine.affine_matrix, dtype=float),
    }


def is_output_of(layer, source: str, role: str) -> bool:
    """Whether ``layer`` is the output of ``role`` that a widget made from ``source``."""
    mark = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}
    return mark.get("source") == source and mark.get("role") == role


def find_output(viewer, name: str, source: str, role: str):
    """The output layer called ``name`` made from ``source``, or None."""
    for layer in viewer.layers:
        if layer.name == name and is_output_of(layer, source, role):
            return layer
    return None


_GEOMETRY = ("scale", "translate", "rotate", "shear", "affine")


def add_or_replace_image(viewer, data, kwargs: dict):
    """Add an image layer, or replace the data of the one this widget made before.

    ``kwargs`` are those of ``viewer.add_image`` and must hold ``name`` and the
    ``metadata`` mark of :func:`napari_colorize.layers.output_layer_kwargs`.
    An existing output with the same number of axes keeps its place, visibility
    and display settings and gets the new data and geometry; one with a
    different layout is replaced at the same place in the layer list.
    """
    mark = kwargs["metadata"][METADATA_KEY]
    layer = find_output(viewer, kwargs["name"], mark["source"], mark["role"])
    rgb = bool(kwargs.get("rgb", False))
    ndim = np.ndim(data) - (1 if rgb else 0)
    if layer is not None and layer.ndim == ndim and bool(layer.rgb) == rgb:
        # geometry first: napari re-slices on each change, and the new data may
        # be outside the old extent
        for key in _GEOMETRY:
            if key in kwargs:
                setattr(layer, key, kwargs[key])
        layer.data = data
        if "contrast_limits" in kwargs:
            layer.contrast_limits = kwargs["contrast_limits"]
        return layer
    index = None
    if layer is not None:
        index = viewer.layers.index(layer)
        kwargs = {**kwargs, "visible": layer.visible}
        viewer.layers.remove(layer)
    new = viewer.add_image(data, **kwargs)
    if index is not None:
        viewer.layers.move(viewer.layers.index(new), index)
    return new


@cache
def _lab_colormap(channel: str):
    from napari.utils.colormaps import Colormap

    if channel == "L":
        return "gray"
    controls, colors = lab_colormap_colors(channel, n=17)
    names = {"a": "Lab a (green-magenta)", "b": "Lab b (blue-yellow)"}
    return Colormap(colors=colors, controls=controls, name=names[channel])


def lab_display_kwargs(channel: str) -> dict:
    """``colormap`` and ``contrast_limits`` of an L, a or b layer."""
    if channel not in LAB_CHANNELS:
        raise ValueError(f"channel must be one of {LAB_CHANNELS}, got {channel!r}")
    return {
        "colormap": _lab_colormap(channel),
        "contrast_limits": LAB_CONTRAST_LIMITS[channel],
    }
