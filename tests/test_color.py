import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage import color as skcolor

from napari_colorize import color

EDGES = np.array(
    [
        [0, 0, 0],
        [1, 1, 1],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [0, 1, 1],
        [1, 0, 1],
        [0.5, 0.5, 0.5],
        [0.04045, 0.04045, 0.04045],
        [0.0031308, 0.5, 1.0],
    ]
)

unit_floats = st.floats(0.0, 1.0, allow_nan=False, width=32)
rgb_arrays = arrays(
    np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(3)), elements=unit_floats
)


def to_nchw(a):
    return torch.from_numpy(np.ascontiguousarray(a.reshape(-1, 1, 1, 3).transpose(0, 3, 1, 2)))


def from_nchw(t):
    return t.detach().numpy().transpose(0, 2, 3, 1).reshape(-1, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rgb_to_lab_matches_skimage_on_edges_and_random(dtype):
    rgb = np.concatenate([EDGES, np.random.default_rng(0).random((2000, 3))]).astype(dtype)
    lab = color.rgb_to_lab(rgb)
    assert lab.dtype == dtype
    assert np.abs(lab - skcolor.rgb2lab(rgb.astype(np.float64))).max() < 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lab_to_rgb_matches_skimage(dtype):
    rgb = np.concatenate([EDGES, np.random.default_rng(1).random((2000, 3))])
    lab = skcolor.rgb2lab(rgb)
    back = color.lab_to_rgb(lab.astype(dtype))
    assert back.dtype == dtype
    assert np.abs(back - skcolor.lab2rgb(lab)).max() < 1e-4
    assert np.abs(color.rgb_to_lab(back) - lab).max() < 1e-3


def test_uint8_and_uint16_inputs_are_scaled():
    rgb8 = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], dtype=np.uint8)
    rgb16 = rgb8.astype(np.uint16) * 257
    expected = skcolor.rgb2lab(rgb8 / 255.0)
    assert np.abs(color.rgb_to_lab(rgb8) - expected).max() < 1e-3
    assert np.abs(color.rgb_to_lab(rgb16) - expected).max() < 1e-3


def test_out_of_gamut_lab_is_clipped_into_unit_range():
    lab = np.array([[50.0, 200.0, -200.0], [100.0, 0.0, 0.0], [0.0, -128.0, 127.0]])
    rgb = color.lab_to_rgb(lab)
    assert rgb.min() >= 0.0
    assert rgb.max() <= 1.0
    t = color.lab_to_rgb_torch(to_nchw(lab))
    assert float(t.min()) >= 0.0
    assert float(t.max()) <= 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_matches_numpy(dtype):
    rgb = np.concatenate([EDGES, np.random.default_rng(2).random((500, 3))])
    lab_t = color.rgb_to_lab_torch(to_nchw(rgb).to(dtype))
    assert lab_t.dtype == dtype
    assert np.abs(from_nchw(lab_t) - skcolor.rgb2lab(rgb)).max() < 1e-3
    rgb_t = color.lab_to_rgb_torch(lab_t)
    assert np.abs(from_nchw(rgb_t) - rgb).max() < 1e-3


def test_torch_half_precision_is_computed_in_float32():
    rgb = torch.rand(2, 3, 4, 4).half()
    assert color.rgb_to_lab_torch(rgb).dtype == torch.float32


def test_torch_is_differentiable_with_finite_gradients_at_black_and_white():
    rgb = torch.tensor(EDGES, dtype=torch.float64).reshape(-1, 1, 1, 3).permute(0, 3, 1, 2)
    rgb = rgb.clone().requires_grad_(True)
    color.rgb_to_lab_torch(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
    lab = color.rgb_to_lab_torch(torch.rand(2, 3, 5, 5, dtype=torch.float64)).detach()
    lab.requires_grad_(True)
    color.lab_to_rgb_torch(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()
    assert torch.autograd.gradcheck(
        color.rgb_to_lab_torch, (torch.rand(1, 3, 2, 2, dtype=torch.float64).requires_grad_(),)
    )


def test_gray_to_l_matches_rgb_with_equal_channels():
    g = np.linspace(0, 1, 257)
    expected = skcolor.rgb2lab(np.stack([g, g, g], axis=-1))[..., 0]
    assert np.abs(color.gray_to_l(g) - expected).max() < 1e-6
    assert color.gray_to_l(g.astype(np.float32)).dtype == np.float32


def test_network_scaling_round_trips():
    L = np.linspace(0, 100, 11)
    assert np.allclose(color.l_to_net(L)[[0, -1]], [-1, 1])
    assert np.allclose(color.net_to_l(color.l_to_net(L)), L)
    ab = np.linspace(-128, 127, 7)
    assert np.allclose(color.net_to_ab(color.ab_to_net(ab)), ab)
    assert np.abs(color.ab_to_net(ab)).max() <= 1.0


@pytest.mark.parametrize(
    ("bad", "match"),
    [(np.zeros((4, 4)), r"shape \(\.\.\., 3\)"), (np.zeros((2, 4), dtype=np.int64), "3")],
)
def test_bad_rgb_shapes_and_dtypes_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        color.rgb_to_lab(bad)


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype int64"):
        color.rgb_to_lab(np.zeros((2, 3), dtype=np.int64))


def test_bad_tensor_shape_is_named():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        color.rgb_to_lab_torch(torch.zeros(3, 4, 4))


@settings(max_examples=60, deadline=None)
@given(rgb_arrays)
def test_round_trip_property(rgb):
    lab = color.rgb_to_lab(rgb)
    assert np.abs(lab - skcolor.rgb2lab(rgb)).max() < 1e-3
    assert np.abs(color.lab_to_rgb(lab) - rgb).max() < 1e-6
    assert (lab[..., 0] >= -1e-9).all()
    assert (lab[..., 0] <= 100 + 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.just(3), st.integers(1, 5), st.integers(1, 5)),
        elements=unit_floats,
    )
)
def test_torch_round_trip_property(rgb):
    t = torch.from_numpy(rgb)
    back = color.lab_to_rgb_torch(color.rgb_to_lab_torch(t))
    assert torch.allclose(back, t, atol=2e-4)
