"""Tests for napari_colorize.images: user arrays -> L in [0, 100]."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_colorize.images import (
    MIN_SIZE,
    ImageLayout,
    describe,
    intensity_range,
    iter_planes,
    plane_to_lightness,
    to_lightness,
)

DTYPES = ["uint8", "uint16", "int16", "int32", "float32", "float64", "bool"]


class CountingArray:
    """A read-only array that records every ``__getitem__`` call (a stand-in for zarr)."""

    def __init__(self, data):
        self._data = np.asarray(data)
        self.shape, self.dtype, self.ndim = self._data.shape, self._data.dtype, self._data.ndim
        self.reads = []

    def __getitem__(self, key):
        result = self._data[key]
        if np.size(result):  # dask asks for empty slices to learn the chunk type
            self.reads.append(key)
        return result


# ------------------------------------------------------------ property tests


@st.composite
def images(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    kind = draw(st.sampled_from(["2d", "rgb", "rgba", "3d", "4d"]))
    side = st.integers(MIN_SIZE, 9)
    spatial = (draw(side), draw(side))
    shape = {
        "2d": spatial,
        "rgb": (*spatial, 3),
        "rgba": (*spatial, 4),
        "3d": (draw(st.integers(1, 3)), *spatial),
        "4d": (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial),
    }[kind]
    if dtype.kind == "f":
        bound = draw(st.sampled_from([1.0, 1e3, 1e30, 1e300 if dtype.itemsize == 8 else 1e38]))
        bound = float(dtype.type(bound))  # exactly representable in the dtype
        elements = st.floats(-bound, bound, width=8 * dtype.itemsize)
    else:
        elements = None
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    return array, kind


@settings(max_examples=150, deadline=None)
@given(images())
def test_any_image_gives_finite_lightness_in_range(case):
    array, kind = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or divide-by-zero warnings
        lightness, layout = to_lightness(array)
    assert lightness.dtype == np.float32
    assert np.isfinite(lightness).all()
    assert lightness.min() >= 0.0
    assert lightness.max() <= 100.0
    assert layout.rgb == (kind in ("rgb", "rgba"))
    assert lightness.shape == layout.lightness_shape
    assert layout.output_shape == (*layout.lightness_shape, 3)
    assert layout.n_planes == int(np.prod(layout.leading_shape))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(4, 8), st.integers(4, 8), st.sampled_from([3, 4])))
)
def test_rgb_lightness_matches_skimage(rgb):
    from skimage.color import rgb2lab

    lightness, layout = to_lightness(rgb)
    assert layout.rgb
    expected = rgb2lab(rgb[..., :3])[..., 0]
    np.testing.assert_allclose(lightness, expected, atol=1e-3)


# ------------------------------------------------------------ exact values


def test_uint8_gray_endpoints_are_black_and_white():
    gray = np.zeros((8, 8), np.uint8)
    gray[:, 4:] = 255
    lightness, _ = to_lightness(gray)
    np.testing.assert_allclose(lightness[:, :4], 0.0, atol=1e-4)
    np.testing.assert_allclose(lightness[:, 4:], 100.0, atol=1e-4)


def test_gray_equals_the_lightness_of_an_rgb_gray():
    from skimage.color import rgb2lab

    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lightness, _ = to_lightness(gray)
    expected = rgb2lab(np.repeat(gray[..., None], 3, axis=-1))[..., 0]
    np.testing.assert_allclose(lightness, expected, atol=1e-3)


def test_float_rgb_and_bool_use_their_photo_ranges():
    from skimage.color import rgb2lab

    rgb = np.random.default_rng(0).random((6, 7, 3))
    np.testing.assert_allclose(to_lightness(rgb)[0], rgb2lab(rgb)[..., 0], atol=1e-3)
    mask = np.eye(6, dtype=bool)
    assert intensity_range(mask) == (0.0, 1.0)
    lightness, _ = to_lightness(mask)
    np.testing.assert_allclose(lightness[mask], 100.0, atol=1e-4)
    np.testing.assert_allclose(lightness[~mask], 0.0, atol=1e-4)


def test_uint16_is_scaled_by_percentiles():
    image = np.random.default_rng(1).integers(100, 4000, size=(32, 32), dtype=np.uint16)
    lo, hi = intensity_range(image)
    np.testing.assert_allclose((lo, hi), np.percentile(image, (0.1, 99.9)))
    lightness, _ = to_lightness(image)
    assert np.all(lightness[image <= lo] == 0.0)
    np.testing.assert_allclose(lightness[image >= hi], 100.0, atol=1e-4)
    assert intensity_range(image, percentiles=(5, 95)) == tuple(np.percentile(image, (5, 95)))
    assert intensity_range(image, percentiles=None) == (0.0, 65535.0)
    full, _ = to_lightness(image, percentiles=None)
    np.testing.assert_allclose(full, to_lightness(image / 65535.0)[0], atol=1e-3)


def test_floats_outside_unit_range_use_percentiles_or_min_max():
    image = np.linspace(-5.0, 20.0, 64).reshape(8, 8)
    assert intensity_range(image, percentiles=None) == (-5.0, 20.0)
    lo, hi = intensity_range(image)
    assert -5.0 < lo < hi < 20.0


def test_value_range_overrides_the_data_range():
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)
    lightness, _ = to_lightness(image, value_range=(0, 63))
    np.testing.assert_allclose(lightness, to_lightness(image / 63.0)[0], atol=1e-3)


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [(0, np.uint16, 0.0), (65535, np.uint16, 100.0), (0, np.uint8, 0.0), (255, np.uint8, 100.0),
     (0, np.int16, 0.0), (32767, np.int16, 100.0), (0.0, np.float32, 0.0),
     (1.0, np.float32, 100.0)],
)  # fmt: skip
def test_constant_integer_image_is_read_on_its_dtype_scale(value, dtype, expected):
    # all 0 is black and all 65535 white, as for uint8 and floats (not mid-gray)
    lightness, _ = to_lightness(np.full((2, 8, 8), value, dtype))
    np.testing.assert_allclose(lightness, expected, atol=1e-3)
    dark, _ = to_lightness(np.full((8, 8), 1000, np.uint16))
    assert 0 < dark[0, 0] < 20  # one lightness, the value's own


def test_constant_float_image_is_mid_gray_without_dividing_by_zero():
    mid_gray = to_lightness(np.full((4, 4), 0.5))[0][0, 0]
    for value, dtype in [(5.0, np.float32), (-3.0, np.float64)]:
        image = np.full((2, 8, 8), value, dtype)
        lo, hi = intensity_range(image)
        assert lo == hi == value
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lightness, _ = to_lightness(image)
        np.testing.assert_allclose(lightness, mid_gray)
        assert 53 < mid_gray < 54


def test_sparse_data_falls_back_to_min_max():
    image = np.zeros((64, 64), np.uint16)
    image[10, 10] = 1000  # one bright spot: both percentiles are 0
    assert intensity_range(image) == (0.0, 1000.0)
    lightness, _ = to_lightness(image)
    assert lightness[10, 10] == pytest.approx(100.0)
    assert lightness[0, 0] == 0.0


# ------------------------------------------------------------ layouts


@pytest.mark.parametrize(
    ("shape", "rgb", "expected"),
    [
        # shape, rgb argument -> (rgb, spatial, leading, plane_shape)
        ((8, 9), None, (False, (8, 9), (), (8, 9))),
        ((8, 9, 3), None, (True, (8, 9), (), (8, 9, 3))),
        ((8, 9, 4), None, (True, (8, 9), (), (8, 9, 4))),
        ((8, 9, 4), False, (False, (9, 4), (8,), (9, 4))),
        ((2, 9, 4), None, (False, (9, 4), (2,), (9, 4))),  # 2 px high as RGBA: gray
        ((5, 8, 9), None, (False, (8, 9), (5,), (8, 9))),
        ((2, 5, 8, 9, 3), True, (True, (8, 9), (2, 5), (8, 9, 3))),
    ],
)
def test_describe_layouts(shape, rgb, expected):
    layout = describe(np.zeros(shape, np.uint8), rgb=rgb)
    assert (layout.rgb, layout.spatial_shape, layout.leading_shape, layout.plane_shape) == expected
    assert layout.shape == shape
    assert layout.output_shape == layout.leading_shape + layout.spatial_shape + (3,)
    assert layout.n_planes == int(np.prod(layout.leading_shape))


def test_layout_is_frozen():
    layout = describe(np.zeros((8, 8)))
    assert isinstance(layout, ImageLayout)
    with pytest.raises(AttributeError):
        layout.rgb = True


def test_lists_are_accepted():
    lightness, layout = to_lightness([[0, 255] * 4] * 4)
    assert layout.shape == (4, 8)
    assert lightness.shape == (4, 8)


def test_iter_planes_yields_each_plane_once_in_order():
    stack = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    layout = describe(stack)
    planes = list(iter_planes(stack, layout))
    assert [index for index, _ in planes] == [(i, j) for i in range(2) for j in range(3)]
    for index, plane in planes:
        assert isinstance(plane, np.ndarray)
        np.testing.assert_array_equal(plane, stack[index])
    lightness, _ = to_lightness(stack)
    for index, plane in planes:
        expected = plane_to_lightness(plane, layout, intensity_range(stack, layout))
        np.testing.assert_array_equal(lightness[index], expected)


# ------------------------------------------------------------ lazy arrays


def test_describe_and_photo_ranges_read_nothing():
    for dtype in (np.uint8, bool):
        lazy = CountingArray(np.zeros((50, 8, 8), dtype))
        describe(lazy)
        intensity_range(lazy)
        assert lazy.reads == []
    lazy = CountingArray(np.zeros((50, 8, 8), np.int16))
    intensity_range(lazy, percentiles=None)
    assert lazy.reads == []


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_intensity_range_samples_at_most_max_planes(dtype):
    lazy = CountingArray(np.random.default_rng(2).random((100, 8, 8, 3)).astype(dtype) * 9)
    intensity_range(lazy, max_planes=5)
    assert 1 <= len(lazy.reads) <= 5
    assert all(len(key) == 1 for key in lazy.reads)  # whole planes, one at a time


def test_dask_array_stays_lazy():
    da = pytest.importorskip("dask.array")
    source = CountingArray(np.random.default_rng(3).integers(0, 4000, (40, 8, 8), np.uint16))
    lazy = da.from_array(source, chunks=(1, 8, 8))
    source.reads.clear()
    layout = describe(lazy)
    value_range = intensity_range(lazy, layout, max_planes=4)
    assert len(source.reads) <= 4
    index, plane = next(iter_planes(lazy, layout))
    assert index == (0,)
    assert isinstance(plane, np.ndarray)
    assert len(source.reads) <= 5
    lightness = plane_to_lightness(plane, layout, value_range)
    assert lightness.shape == (8, 8)


def test_to_lightness_reads_lazy_planes_one_by_one():
    source = CountingArray(np.random.default_rng(4).integers(0, 255, (6, 8, 8), np.uint8))
    lightness, _ = to_lightness(source)
    assert sorted(source.reads) == [(i,) for i in range(6)]
    np.testing.assert_array_equal(lightness, to_lightness(source._data)[0])


# ------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    ("array", "rgb", "message"),
    [
        (np.zeros((8, 8), np.complex64), None, r"complex64.*np\.abs"),
        (np.zeros((8, 8), object), None, r"object.*astype"),
        (np.full((8, 8), "a"), None, r"<U1.*astype"),
        (np.zeros((8, 8), "datetime64[s]"), None, r"datetime64.*astype"),
        (np.zeros((8, 0)), None, r"empty.*zero-length"),
        (np.zeros((0, 8, 8)), None, r"empty.*zero-length"),
        (np.float64(3.0), None, r"at least 2 axes.*\(\)"),
        (np.zeros(16), None, r"at least 2 axes.*reshape"),
        (np.zeros((8, 3)), None, r"3 pixels wide.*pad or resize"),
        (np.zeros((2, 8)), None, r"2 pixels high"),
        (np.zeros((5, 3, 8)), None, r"3 pixels high"),
        (np.zeros((8, 8, 3)), False, r"3 pixels wide.*pass rgb=True"),
        (np.zeros((2, 8, 4)), True, r"2 pixels high.*pass rgb=False"),
        (np.zeros((2, 3, 3)), None, r"3 pixels wide.*resize$"),
        (np.zeros((8, 8, 5)), True, r"rgb=True needs.*3 \(RGB\) or 4 \(RGBA\).*rgb=False"),
        (np.zeros((8, 8)), True, r"rgb=True needs.*np\.moveaxis"),
        ([[1, 2, 3], [4, 5]], None, r"cannot read list.*equal-length rows"),
        ([np.zeros((8, 8)), np.zeros((4, 4))], None, r"multiscale.*data\[0\]"),
    ],
)
def test_bad_arrays_are_rejected_with_a_fix(array, rgb, message):
    with pytest.raises(ValueError, match=message):
        describe(array, rgb=rgb)
    with pytest.raises(ValueError, match=message):
        to_lightness(array, rgb=rgb)


@pytest.mark.parametrize(("bad", "name"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_nan_and_inf_are_rejected(bad, name):
    stack = np.zeros((3, 8, 8), np.float32)
    stack[1, 2, 2] = bad
    message = rf"contains {name} \(in plane \(1,\)\).*np\.nan_to_num"
    with pytest.raises(ValueError, match=message):
        intensity_range(stack)
    with pytest.raises(ValueError, match=message):
        to_lightness(stack)
    layout = describe(stack)
    with pytest.raises(ValueError, match=rf"contains {name}.*np\.nan_to_num"):
        plane_to_lightness(stack[1], layout, (0.0, 1.0))


def test_nan_in_a_single_image_is_rejected():
    image = np.ones((8, 8, 3))
    image[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN; replace"):
        to_lightness(image)


@pytest.mark.parametrize("percentiles", [(99, 1), (5, 5), (-1, 50), (1, 101)])
def test_bad_percentiles_are_rejected(percentiles):
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)
    with pytest.raises(ValueError, match=r"0 <= lower < upper <= 100"):
        intensity_range(image, percentiles=percentiles)


@pytest.mark.parametrize("value_range", [(5, 1), (0, np.nan), (0, np.inf), (1,), "ab"])
def test_bad_value_ranges_are_rejected(value_range):
    image = np.zeros((8, 8), np.uint16)
    with pytest.raises(ValueError, match=r"value_range.*intensity_range\(array\)"):
        plane_to_lightness(image, describe(image), value_range)


def test_mismatched_layout_and_plane_are_rejected():
    layout = describe(np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"describes shape \(8, 8\).*call describe\(array\)"):
        intensity_range(np.zeros((9, 9), np.uint16), layout)
    with pytest.raises(ValueError, match=r"describes shape"):
        list(iter_planes(np.zeros((2, 8, 8)), layout))
    with pytest.raises(ValueError, match=r"plane of shape \(8, 8\).*iter_planes"):
        plane_to_lightness(np.zeros((8, 9)), layout, (0, 1))
    with pytest.raises(ValueError, match=r"max_planes must be at least 1"):
        intensity_range(np.zeros((3, 8, 8), np.uint16), max_planes=0)
