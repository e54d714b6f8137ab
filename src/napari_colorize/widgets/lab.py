"""The Lab channels dock widget: split RGB into L, a and b layers, merge them back.

L is shown in gray over 0..100, a on a green-magenta and b on a blue-yellow
colormap, both over -128..127, so channels of different images compare at a
glance. For a stack only the plane shown is split, and the split follows the
viewer as it moves through the stack. The conversions are
:func:`napari_colorize.layers.split_lab` and :func:`~napari_colorize.layers.merge_lab`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.layers import Image
from napari.utils.notifications import show_error

from ..layers import (
    LAB_CHANNELS,
    METADATA_KEY,
    merge_lab,
    output_layer_kwargs,
    plane_index,
    select_source,
    split_lab,
)
from ._viewer import (
    add_or_replace_image,
    compact_combos,
    find_output,
    lab_display_kwargs,
    layer_geometry,
    scroll_rows,
    wrapping_label,
)

if TYPE_CHECKING:
    import napari

__all__ = ["LabWidget"]


def _base_name(layer) -> str:
    """The name of the image a channel layer belongs to."""
    mark = (layer.metadata or {}).get(METADATA_KEY) or {}
    if mark.get("role") in LAB_CHANNELS and mark.get("source"):
        return mark["source"]
    return layer.name


class LabWidget(Container):
    """Split an RGB layer into L, a, b layers and merge L, a, b layers into RGB.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are offered and to which the results are added.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = viewer
        self._follow = None  # the stack layer whose current plane is split
        self._merged = None  # (L, a, b) layers a merged layer was made from

        self.rgb_layer = ComboBox(name="rgb_layer", label="RGB image", choices=self._rgb_choices)
        self.split_button = PushButton(name="split_button", label="", text="Split into L, a, b")
        self.l_layer = ComboBox(name="l_layer", label="L", choices=self._channel_choices)
        self.a_layer = ComboBox(name="a_layer", label="a", choices=self._channel_choices)
        self.b_layer = ComboBox(name="b_layer", label="b", choices=self._channel_choices)
        self.merge_button = PushButton(name="merge_button", label="", text="Merge into RGB")
        self.status = Label(value="")  # unnamed, so the form shows no label for it
        self.extend(
            [
                self.rgb_layer,
                self.split_button,
                self.l_layer,
                self.a_layer,
                self.b_layer,
                self.merge_button,
                self.status,
            ]
        )
        wrapping_label(self.status)
        compact_combos(self.rgb_layer, self.l_layer, self.a_layer, self.b_layer)
        scroll_rows(self)
        self.split_button.changed.connect(self.split)
        self.merge_button.changed.connect(self.merge)
        viewer.dims.events.current_step.connect(self._on_step)
        self.reset_choices()

    # ------------------------------------------------------------ choices

    def _rgb_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image) and layer.rgb
        ]

    def _channel_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image) and not layer.rgb
        ]

    # -------------------------------------------------------------- split

    def split(self, layer=None):
        """Split ``layer`` (default: the chosen RGB layer) into L, a and b layers.

        For a stack, the plane shown is split, and the channel layers follow
        the viewer to other planes. Returns the three layers, or None after
        reporting an error.
        """
        if isinstance(layer, bool):  # the button's "changed" signal passes its state
            layer = None
        layer = layer if layer is not None else self.rgb_layer.value
        try:
            if layer is None or not isinstance(layer, Image) or not layer.rgb:
                name = getattr(layer, "name", None)
                raise ValueError(
                    "choose an RGB Image layer to split"
                    + (f"; {name!r} is not one" if name else "")
                )
            channels = self._split_plane(layer)
        except Exception as exc:
            self._report(exc)
            return None
        self._follow = layer if layer.ndim > 2 else None
        self.reset_choices()
        for combo, channel_layer in zip((self.l_layer, self.a_layer, self.b_layer), channels):
            combo.value = channel_layer
        self.status.value = f"split {layer.name}"
        return channels

    def _split_plane(self, layer):
        ndim = layer.ndim
        plane = None
        if ndim > 2:
            point = layer.world_to_data(self._viewer.dims.point)
            plane = plane_index(point, layer.level_shapes[0], ndim - 2)
        selection = select_source(
            layer.data, ndim=ndim, multiscale=layer.multiscale, level=0, plane=plane
        )
        lab = split_lab(selection.array)
        geometry = layer_geometry(layer)
        out = []
        for channel, data in zip(LAB_CHANNELS, lab):
            kwargs = output_layer_kwargs(layer.name, channel, selection=selection, **geometry)
            out.append(
                add_or_replace_image(self._viewer, data, {**kwargs, **lab_display_kwargs(channel)})
            )
        return out

    def _on_step(self, _event=None) -> None:
        layer = self._follow
        if layer is None:
            return
        if layer not in self._viewer.layers:
            self._follow = None
            return
        channels = [
            find_output(self._viewer, f"{layer.name} {c}", layer.name, c) for c in LAB_CHANNELS
        ]
        if any(c is None for c in channels):  # the user removed them: stop following
            self._follow = None
            return
        try:
            channels = self._split_plane(layer)
            if self._merged is not None and list(self._merged) == channels:
                self.merge(*channels)
        except Exception as exc:
            self._follow = None
            self._report(exc)

    # -------------------------------------------------------------- merge

    def merge(self, lightness=None, a=None, b=None):
        """Merge L, a and b layers (default: the chosen ones) into an RGB layer.

        The result is called ``"<image> merged"`` and takes the L layer's
        geometry. Returns it, or None after reporting an error.
        """
        if isinstance(lightness, bool):
            lightness = None
        layers = [
            given if given is not None else combo.value
            for given, combo in zip((lightness, a, b), (self.l_layer, self.a_layer, self.b_layer))
        ]
        try:
            for channel, layer in zip(LAB_CHANNELS, layers):
                if layer is None or not isinstance(layer, Image) or layer.rgb:
                    raise ValueError(f"choose a single-channel Image layer for {channel}")
            data = [layer.data[0] if layer.multiscale else layer.data for layer in layers]
            rgb = merge_lab(*data)
            base = _base_name(layers[0])
            kwargs = output_layer_kwargs(base, "merged", **layer_geometry(layers[0]))
            merged = add_or_replace_image(self._viewer, rgb, {**kwargs, "rgb": True})
        except Exception as exc:
            self._report(exc)
            return None
        self._merged = tuple(layers)
        self.status.value = f"merged into {merged.name}"
        return merged

    def _report(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.status.value = f"error: {message}"
        show_error(message)
