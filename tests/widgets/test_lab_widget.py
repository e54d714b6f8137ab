"""The Lab channels widget: split RGB into L, a, b and merge back, following a stack."""

import numpy as np
import pytest

from napari_colorize.layers import LAB_CONTRAST_LIMITS
from napari_colorize.widgets import lab as lab_module

PLUGIN = "napari-colorize"


@pytest.fixture
def lab_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Lab channels")
    return viewer, widget


def _rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_split_makes_three_layers_with_fixed_display(lab_widget):
    viewer, widget = lab_widget
    rgb = _rgb((16, 20))
    viewer.add_image(rgb, name="photo", rgb=True, scale=(2, 3), translate=(5, -1))
    widget.split()
    for channel in "Lab":
        layer = viewer.layers[f"photo {channel}"]
        assert layer.data.shape == (16, 20)
        assert tuple(layer.contrast_limits) == LAB_CONTRAST_LIMITS[channel]
        np.testing.assert_allclose(layer.scale, (2, 3))
        np.testing.assert_allclose(layer.translate, (5, -1))
    assert viewer.layers["photo L"].colormap.name == "gray"
    assert "green-magenta" in viewer.layers["photo a"].colormap.name
    assert "blue-yellow" in viewer.layers["photo b"].colormap.name
    # a is green (low) to magenta (high); b is blue (low) to yellow (high)
    a_colors = viewer.layers["photo a"].colormap.colors
    assert a_colors[0, 1] > a_colors[0, 0]
    assert a_colors[-1, 0] > a_colors[-1, 1]
    b_colors = viewer.layers["photo b"].colormap.colors
    assert b_colors[0, 2] > b_colors[0, 0]
    assert b_colors[-1, 0] > b_colors[-1, 2]


def test_split_then_merge_round_trips(lab_widget):
    viewer, widget = lab_widget
    rgb = _rgb((12, 12), seed=1)
    viewer.add_image(rgb, name="photo", rgb=True)
    widget.split()
    merged = widget.merge()
    assert merged.name == "photo merged"
    assert merged.rgb
    assert np.abs(merged.data.astype(int) - rgb).max() <= 1
    # merging again replaces the layer instead of adding one
    n = len(viewer.layers)
    widget.merge()
    assert len(viewer.layers) == n


def test_stack_split_follows_the_current_plane(lab_widget):
    viewer, widget = lab_widget
    stack = _rgb((3, 8, 10), seed=2)
    viewer.add_image(stack, name="stack", rgb=True, scale=(4, 1, 1))
    viewer.dims.set_current_step(0, 1)
    widget.split()
    lightness = viewer.layers["stack L"]
    expected = lab_module.split_lab(stack[1])[0]
    np.testing.assert_allclose(lightness.data[0], expected, atol=1e-4)
    np.testing.assert_allclose(lightness.translate, (4, 0, 0))
    viewer.dims.set_current_step(0, 2)
    expected = lab_module.split_lab(stack[2])[0]
    np.testing.assert_allclose(viewer.layers["stack L"].data[0], expected, atol=1e-4)
    np.testing.assert_allclose(viewer.layers["stack L"].translate, (8, 0, 0))


def test_bad_inputs_notify(lab_widget, monkeypatch):
    viewer, widget = lab_widget
    messages = []
    monkeypatch.setattr(lab_module, "show_error", messages.append)
    gray = viewer.add_image(np.zeros((8, 8)), name="gray")
    assert widget.split(gray) is None
    assert "RGB" in messages[-1]
    small = viewer.add_image(np.zeros((8, 9)), name="small")
    assert widget.merge(gray, gray, small) is None
    assert "same shape" in messages[-1]
    labels = viewer.add_labels(np.zeros((8, 8), dtype=np.uint8))
    assert widget.merge(labels, gray, gray) is None
    assert widget.status.value.startswith("error")
