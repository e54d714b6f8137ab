"""Qt-free layer helpers: what to colorize and where the outputs go."""

import numpy as np
import pytest

from napari_colorize import layers


def test_choose_level():
    shapes = [(64, 64), (32, 32), (16, 16)]
    assert layers.choose_level(shapes, shown_level=2, full_resolution=False) == 2
    assert layers.choose_level(shapes, shown_level=2, full_resolution=True) == 0
    assert layers.choose_level(shapes, shown_level=7, full_resolution=False) == 2
    with pytest.raises(ValueError, match="at least one level"):
        layers.choose_level([], 0, False)


def test_plane_index_rounds_and_clips():
    assert layers.plane_index((1.6, -3.0, 5.0, 5.0), (4, 3, 10, 10), 2) == (2, 0)
    assert layers.plane_index((9.0, 0.0, 0.0), (4, 10, 10), 1) == (3,)
    with pytest.raises(ValueError, match="stack axes"):
        layers.plane_index((1.0,), (4, 10, 10), 2)


def test_select_source_plane_of_a_pyramid_is_lazy_and_placed():
    class Lazy:  # an array that refuses to be read whole
        def __init__(self, shape):
            self.shape, self.dtype, self.ndim = shape, np.dtype("uint8"), len(shape)

        def __getitem__(self, key):
            return ("sliced", key)

    pyramid = [Lazy((6, 64, 64)), Lazy((6, 32, 32))]
    sel = layers.select_source(pyramid, ndim=3, multiscale=True, level=1, plane=(4,))
    assert sel.array == ("sliced", (slice(4, 5),))
    assert sel.factors == (1.0, 2.0, 2.0)
    assert sel.offset == (4.0, 0.0, 0.0)
    kwargs = layers.output_layer_kwargs(
        "cells", "colorized", scale=(2, 0.5, 0.5), translate=(1, 0, 0), selection=sel
    )
    assert kwargs["name"] == "cells colorized"
    assert kwargs["scale"] == (2.0, 1.0, 1.0)
    assert kwargs["translate"] == (9.0, 0.0, 0.0)
    assert kwargs["metadata"] == {layers.METADATA_KEY: {"source": "cells", "role": "colorized"}}


def test_select_source_rejects_bad_requests():
    with pytest.raises(ValueError, match="at least 2 axes"):
        layers.select_source(np.zeros(5), ndim=1)
    with pytest.raises(ValueError, match="level 3 does not exist"):
        layers.select_source([np.zeros((4, 4))], ndim=2, multiscale=True, level=3)
    with pytest.raises(ValueError, match="index value"):
        layers.select_source(np.zeros((2, 3, 4, 4)), ndim=4, plane=(1,))


def test_output_kwargs_pass_affine_through():
    affine = np.eye(3)
    affine[0, 2] = 7
    kwargs = layers.output_layer_kwargs("a", "L", scale=(1, 1), translate=(0, 0), affine=affine)
    np.testing.assert_array_equal(kwargs["affine"], affine)
    with pytest.raises(ValueError, match="differ in length"):
        layers.output_layer_kwargs("a", "L", scale=(1, 1), translate=(0,))


def test_split_merge_round_trip_and_errors():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    lightness, a, b = layers.split_lab(rgb)
    assert lightness.shape == (2, 8, 8)
    assert lightness.dtype == np.float32
    assert np.abs(layers.merge_lab(lightness, a, b).astype(int) - rgb).max() <= 1
    with pytest.raises(ValueError, match="3 or 4 values"):
        layers.split_lab(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="same shape"):
        layers.merge_lab(lightness, a, b[0])


@pytest.mark.parametrize(("channel", "low", "high"), [("a", 1, 0), ("b", 2, 0)])
def test_chroma_colormaps_run_between_opposite_colours(channel, low, high):
    controls, colors = layers.lab_colormap_colors(channel, n=5)
    assert controls[0] == 0
    assert controls[-1] == 1
    # a: green -> magenta (red high at the top); b: blue -> yellow
    assert colors[0, low] > colors[0, high]
    assert colors[-1, high] > colors[-1, low]
    mid = colors[2, :3]
    assert np.ptp(mid) < 0.05  # neutral gray in the middle
