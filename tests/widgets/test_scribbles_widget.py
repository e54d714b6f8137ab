"""Scribbled hints in the Colorize widget: Shapes and Labels layers as colour hints."""

import numpy as np
import pytest

from napari_colorize.color import AB_SCALE, lab_to_rgb, rgb_to_lab
from napari_colorize.widgets._hint_layers import layer_hints

PLUGIN = "napari-colorize"
RED_AB = (60.0, 40.0)
BLUE_AB = (10.0, -50.0)
RED, BLUE = (
    [*rgb, 1.0] for rgb in lab_to_rgb(np.array([[50.0, *RED_AB], [50.0, *BLUE_AB]])).tolist()
)
CLEAR = [0.0, 0.0, 0.0, 0.0]


@pytest.fixture
def propagate_widget(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A docked Colorize widget set to ``propagate`` on the CPU, live mode off."""
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=30_000)
    widget.device.value = "cpu"
    widget.live.value = False
    widget.model.value = "propagate"
    yield viewer, widget
    qtbot.waitUntil(lambda: not widget.live_hints.workers, timeout=30_000)


def _gray(viewer, **kwargs):
    gray = np.full((40, 60), 30.0)
    gray[:, 30:] = 70.0
    return viewer.add_image(gray, name="gray", contrast_limits=(0, 100), **kwargs)


def _assert_red_and_blue_halves(viewer):
    ab = rgb_to_lab(viewer.layers["gray colorized"].data)[..., 1:]
    assert ab[:, :25, 0].mean() > 30.0
    assert ab[:, 35:, 1].mean() < -25.0


def _painted(hints):
    ys, xs = np.nonzero(hints[..., 2])
    return set(zip(ys.tolist(), xs.tolist()))


def test_the_hints_list_offers_points_shapes_and_labels(propagate_widget):
    viewer, widget = propagate_widget
    _gray(viewer)
    viewer.add_points([[1, 1]], name="points")
    viewer.add_shapes([[[1, 1], [5, 5]]], shape_type="line", name="shapes")
    viewer.add_labels(np.zeros((40, 60), np.uint8), name="labels")
    names = [name for name, _layer in widget._hint_choices()]
    assert names == ["points", "shapes", "labels"]
    with pytest.raises(ValueError, match="Points, Shapes or Labels"):
        layer_hints(viewer.layers["gray"], viewer.layers["gray"], None, (0, 0))


def test_a_red_stroke_and_a_blue_polygon_colour_the_two_halves(propagate_widget, run_and_wait):
    viewer, widget = propagate_widget
    image = _gray(viewer)
    shapes = viewer.add_shapes(
        [np.array([[5.0, 5], [35, 10], [20, 20]]), np.array([[10.0, 40], [10, 55], [30, 50]])],
        shape_type=["path", "polygon"], edge_color=[RED, CLEAR], face_color=[CLEAR, BLUE],
        edge_width=2, name="scribbles",
    )  # fmt: skip
    widget.image.value = image
    widget.hints.value = shapes
    assert "spread along lightness" in widget.hints_info.value
    run_and_wait(widget)
    _assert_red_and_blue_halves(viewer)


def test_two_labels_colour_the_two_halves(propagate_widget, run_and_wait):
    viewer, widget = propagate_widget
    image = _gray(viewer)
    labels = np.zeros((40, 60), np.uint8)
    labels[15:25, 5:20] = 1
    labels[15:25, 40:55] = 2
    layer = viewer.add_labels(labels, name="labels", colormap={1: RED, 2: BLUE, None: CLEAR})
    widget.image.value = image
    widget.hints.value = layer
    run_and_wait(widget)
    _assert_red_and_blue_halves(viewer)


def test_scribbles_land_on_the_image_pixels_with_both_layers_transforms(propagate_widget):
    viewer, widget = propagate_widget
    image = viewer.add_image(np.zeros((24, 20), np.uint8), scale=(2.0, 0.5), translate=(10, -3))
    widget.image.value = image
    # image pixel (r, c) is world (10 + 2 r, -3 + 0.5 c); the labels' pixel (i, j) is
    # world (4 i, 2 j - 3): label pixel (5, 1) covers world rows [18, 22), columns [-2, 0)
    labels = np.zeros((10, 10), np.uint8)
    labels[5, 1] = 1
    layer = viewer.add_labels(
        labels, scale=(4, 2), translate=(0, -3), colormap={1: RED, None: CLEAR}
    )
    widget.hints.value = layer
    hints = widget._make_job(image).hints()
    assert hints.shape == (24, 20, 3)
    expected = {(y, x) for y in range(24) for x in range(20) if 18 <= 10 + 2 * y < 22}
    expected = {(y, x) for y, x in expected if -2 <= -3 + 0.5 * x < 0}
    assert _painted(hints) == expected
    np.testing.assert_allclose(
        hints[5, 3, :2], rgb_to_lab(np.array(RED[:3]))[1:] / AB_SCALE, atol=1e-5
    )
    # a horizontal stroke: data row 7.6 * scale 2 = world row 15.2 -> image row 2.6, width
    # 2 * 2 (shapes' scale) = 4 world units = 1 image row each side of it
    shapes = viewer.add_shapes(
        [np.array([[7.6, -1.0], [7.6, 2.0]])], shape_type="line", scale=(2, 2),
        edge_color=[RED], edge_width=2,
    )  # fmt: skip
    widget.hints.value = shapes
    rows = {y for y, _x in _painted(widget._make_job(image).hints())}
    assert rows == {2, 3}


def test_2d_labels_over_a_stack_hint_the_plane_shown(propagate_widget, run_and_wait):
    viewer, widget = propagate_widget
    stack = np.stack([np.full((40, 60), 30.0), np.full((40, 60), 30.0)])
    stack[:, :, 30:] = 70.0
    image = viewer.add_image(stack, name="gray", contrast_limits=(0, 100))
    labels = np.zeros((40, 60), np.uint8)
    labels[15:25, 5:20] = 1
    layer = viewer.add_labels(labels, colormap={1: RED, None: CLEAR})
    widget.image.value = image
    widget.hints.value = layer
    viewer.dims.set_point(0, 1)
    run_and_wait(widget)
    ab = rgb_to_lab(viewer.layers["gray colorized"].data)[..., 1:]
    assert np.abs(ab[0]).max() < 2.0  # plane 0: no hints, gray
    assert ab[1, :, :25, 0].mean() > 30.0


def test_live_mode_follows_strokes_and_painted_labels(propagate_widget, qtbot):
    viewer, widget = propagate_widget
    image = _gray(viewer)
    shapes = viewer.add_shapes(name="strokes")
    widget.image.value = image
    widget.hints.value = shapes
    widget.live.value = True

    def applied(n):
        qtbot.waitUntil(lambda: widget.live_counts["applied"] >= n, timeout=30_000)
        return viewer.layers["gray colorized"].data.copy()

    applied(1)  # the new hints layer, still empty: gray
    shapes.add_paths([np.array([[5.0, 5], [35, 10]])], edge_color=[RED], edge_width=3)
    red = applied(2)
    assert rgb_to_lab(red)[:, :25, 1].mean() > 30.0
    shapes.edge_color = [BLUE]  # recoloured
    blue = applied(3)
    assert rgb_to_lab(blue)[:, :25, 2].mean() < -25.0

    labels = viewer.add_labels(np.zeros((40, 60), np.uint8), colormap={1: RED, None: CLEAR})
    widget.hints.value = labels
    applied(4)  # no labels yet: gray
    labels.brush_size = 5
    labels.paint((20, 10), 1)
    painted = applied(5)
    assert rgb_to_lab(painted)[:, :25, 1].mean() > 30.0
