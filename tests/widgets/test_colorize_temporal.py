"""The Colorize widget's 'consistent across planes' option (temporal colouring of stacks)."""

import numpy as np
import pytest

from napari_colorize.color import rgb_to_lab


def _panning_stack(planes=4, step=2, shape=(40, 48)):
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(0).random((shape[0] + 20, shape[1] + 20))
    big = gaussian_filter(noise, 2.5)
    big = (big - big.min()) / (big.max() - big.min())
    frames = [
        big[10 : 10 + shape[0], 10 - i * step : 10 - i * step + shape[1]] for i in range(planes)
    ]
    return np.round(np.stack(frames) * 200 + 30).astype(np.uint8)


def test_the_option_applies_only_to_stacks_coloured_whole(colorize_widget):
    viewer, widget = colorize_widget
    single = viewer.add_image(np.zeros((24, 24), np.uint8), name="single")
    widget.image.value = single
    assert not widget.temporal.enabled
    assert "single plane" in widget.temporal.tooltip
    stack = viewer.add_image(_panning_stack(), name="movie", axis_labels=("t", "y", "x"))
    widget.image.value = stack
    assert widget.temporal.enabled
    assert "'t'" in widget.temporal.tooltip
    widget.stack.value = "current plane (preview)"
    assert not widget.temporal.enabled
    assert "every plane" in widget.temporal.tooltip


@pytest.mark.parametrize("temporal", [False, True])
def test_hints_on_one_plane_colour_the_stack_when_consistent(
    colorize_widget, run_and_wait, temporal
):
    viewer, widget = colorize_widget
    stack = viewer.add_image(_panning_stack(), name="movie")
    points = viewer.add_points(
        [[0, 12, 12], [0, 28, 30], [0, 20, 40]], name="hints", face_color="#1040e0", size=3
    )
    widget.image.value = stack
    widget.live.value = False
    widget.model.value = "propagate"
    widget.hints.value = points
    widget.temporal.value = temporal
    run_and_wait(widget)
    rgb = np.asarray(viewer.layers["movie colorized"].data)
    b = rgb_to_lab(rgb)[..., 2].mean(axis=(-2, -1))
    assert b[0] < -15  # the hinted plane is blue either way
    if temporal:
        assert (b[1:] < -15).all(), b
    else:
        assert (np.abs(b[1:]) < 1).all(), b


def test_live_with_consistent_planes_recolours_the_stack(colorize_widget, qtbot):
    viewer, widget = colorize_widget
    stack = viewer.add_image(_panning_stack(), name="movie")
    points = viewer.add_points(np.zeros((0, 3)), name="hints", face_color="#e02010", size=3)
    widget.image.value = stack
    widget.model.value = "propagate"
    widget.temporal.value = True
    widget.hints.value = points
    viewer.dims.set_point(0, 0)
    points.add([[0, 20, 24]])
    qtbot.waitUntil(lambda: widget.live_counts["applied"] >= 1, timeout=30_000)
    rgb = np.asarray(viewer.layers["movie colorized"].data)
    assert rgb.shape == (4, 40, 48, 3)
    a = rgb_to_lab(rgb)[..., 1].mean(axis=(-2, -1))
    assert (a > 10).all(), a  # red on every plane from one point on plane 0
