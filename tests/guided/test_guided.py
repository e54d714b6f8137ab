"""Training-free colour: edge-aware filters, hint propagation, colour references."""

import numpy as np
import pytest

import napari_colorize
from napari_colorize.color import AB_SCALE, lab_to_rgb, rgb_to_lab
from napari_colorize.guided import HintPropagator, ReferenceColorizer
from napari_colorize.guided.filters import domain_transform, guided_filter
from napari_colorize.guided.reference import as_reference_list
from napari_colorize.hints import PointHints
from napari_colorize.inference import Colorizer

RED_AB = (60.0, 40.0)
BLUE_AB = (10.0, -50.0)


def _two_regions(h=48, w=64):
    """L with a dark left and a bright right half: a strong lightness edge at w // 2."""
    lightness = np.full((h, w), 30.0, np.float32)
    lightness[:, w // 2 :] = 70.0
    return lightness


def _hints(shape, points):
    """Hint maps in the package format from ``[(row, col, (a, b)), ...]``."""
    hints = np.zeros((*shape, 3), np.float32)
    for row, col, ab in points:
        hints[row, col, :2] = np.asarray(ab) / AB_SCALE
        hints[row, col, 2] = 1.0
    return hints


def test_domain_transform_keeps_constants_and_stops_at_edges():
    lightness = _two_regions() / 100.0
    flat = np.full((1, *lightness.shape), 3.0, np.float32)
    np.testing.assert_allclose(domain_transform(flat, lightness, 50, 0.05), 3.0, rtol=1e-5)
    impulse = np.zeros((1, *lightness.shape), np.float32)
    impulse[0, 24, 10] = 1.0  # in the dark half
    spread = domain_transform(impulse, lightness, 50, 0.05)[0]
    # the same distance on either side of the edge: far less crosses it
    assert spread[24, 10 + 20] > 50 * spread[24, 10 + 30]


def test_guided_filter_keeps_constants_and_edges():
    guide = _two_regions() / 100.0
    src = np.where(guide[..., None] > 0.5, 1.0, -1.0).astype(np.float32).repeat(2, -1)
    out = guided_filter(guide, src, radius=4, eps=1e-4)
    np.testing.assert_allclose(out[:, :28], -1.0, atol=1e-2)
    np.testing.assert_allclose(out[:, 36:], 1.0, atol=1e-2)


def test_propagation_fills_each_region_with_its_hint():
    lightness = _two_regions()
    hints = _hints(lightness.shape, [(10, 5, RED_AB), (40, 60, BLUE_AB)])
    ab = HintPropagator().predict_ab(lightness, hints)
    assert ab.shape == (*lightness.shape, 2)
    assert ab.dtype == np.float32
    np.testing.assert_allclose(ab[:, :28].mean(axis=(0, 1)), RED_AB, atol=3.0)
    np.testing.assert_allclose(ab[:, 36:].mean(axis=(0, 1)), BLUE_AB, atol=3.0)


def test_propagation_without_hints_is_gray():
    lightness = _two_regions()
    assert not HintPropagator().predict_ab(lightness, None).any()
    assert not HintPropagator().predict_ab(lightness, np.zeros((48, 64, 3), np.float32)).any()
    with pytest.raises(ValueError, match="hints have shape"):
        HintPropagator().predict_ab(lightness, np.zeros((8, 8, 3), np.float32))


def test_correction_is_local():
    lightness = np.full((64, 256), 50.0, np.float32)
    prior = np.zeros((64, 256, 2), np.float32)
    prior[..., 0] = 20.0
    hints = _hints(lightness.shape, [(32, 10, BLUE_AB)])
    ab = HintPropagator().correct(lightness, prior, hints)
    np.testing.assert_allclose(ab[32, 10], BLUE_AB, atol=1e-4)  # the hint itself
    np.testing.assert_allclose(ab[32, 12], BLUE_AB, atol=8.0)  # its surroundings
    np.testing.assert_allclose(ab[:, 200:], prior[:, 200:], atol=1.0)  # far away: the prior
    assert HintPropagator().correct(lightness, prior, None) is prior


def _textured_scene(rng, h=96, w=96, flip=False):
    """RGB where colour follows texture: striped regions red, smooth regions blue."""
    lightness = np.full((h, w), 55.0, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = (yy // 24 + xx // 24) % 2 == 0  # striped and smooth blocks
    if flip:
        stripes = ~stripes
    lightness[stripes] += 12.0 * np.sign(np.sin(np.arange(w) * 1.3))[None].repeat(h, 0)[stripes]
    lightness += rng.normal(0, 0.5, lightness.shape).astype(np.float32)
    ab = np.where(stripes[..., None], RED_AB, BLUE_AB).astype(np.float32)
    lab = np.concatenate([lightness[..., None], ab], -1)
    return (lab_to_rgb(lab) * 255).round().astype(np.uint8), stripes


def _as_gray(rgb):
    """The gray image (uint8) a user would have: the same lightness, no colour."""
    lightness = rgb_to_lab(rgb)[..., :1]
    gray = lab_to_rgb(np.concatenate([lightness, np.zeros_like(lightness).repeat(2, -1)], -1))
    return (gray[..., 0] * 255).round().astype(np.uint8)


def test_reference_colours_follow_texture_not_position():
    rng = np.random.default_rng(0)
    reference, _ = _textured_scene(rng)
    target, stripes = _textured_scene(rng, flip=True)  # the textures swap sides
    gray = rgb_to_lab(target)[..., 0]
    ab = ReferenceColorizer(reference, steps=150).predict_ab(gray)
    assert ab.shape == (*gray.shape, 2)
    red = ab[stripes][:, 0].mean()
    blue = ab[~stripes][:, 1].mean()
    assert red > 30.0, red  # a of the red (striped) regions
    assert blue < -20.0, blue  # b of the blue (smooth) regions (gray: 0)


def test_reference_that_covers_nothing_falls_back_to_gray():
    rng = np.random.default_rng(1)
    reference, _ = _textured_scene(rng)
    # a target of lightness and texture the reference never shows
    yy, xx = np.mgrid[0:96, 0:96]
    gray = (10.0 + 80.0 * ((xx // 3 + yy // 3) % 2)).astype(np.float32)
    method = ReferenceColorizer(reference, steps=150)
    ab = method.predict_ab(gray)
    assert method.last_coverage < 0.5
    assert np.abs(ab).mean() < 0.5 * np.abs(np.asarray(RED_AB)).mean()


def test_reference_inputs_are_checked():
    with pytest.raises(ValueError, match="RGB or RGBA"):
        as_reference_list(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        as_reference_list(np.full((16, 16, 3), 2.0))
    with pytest.raises(ValueError, match="empty"):
        as_reference_list([])
    with pytest.raises(ValueError, match="too small"):
        as_reference_list(np.zeros((2, 16, 3), np.uint8))
    planes = as_reference_list([np.zeros((2, 8, 8, 4), np.uint8), np.ones((8, 9, 3))])
    assert [p.shape for p in planes] == [(8, 8, 3), (8, 8, 3), (8, 9, 3)]


def test_colorize_with_a_reference_fits_once_for_a_stack(monkeypatch):
    rng = np.random.default_rng(2)
    reference, _ = _textured_scene(rng)
    target, _ = _textured_scene(rng, flip=True)
    gray = _as_gray(target)
    stack = np.stack([gray, gray[:, ::-1]])
    fits = []
    original = ReferenceColorizer._train

    def counting(self, *args, **kwargs):
        fits.append(kwargs.get("loss"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ReferenceColorizer, "_train", counting)
    out = napari_colorize.colorize(stack, reference=reference, value_range=(0, 255))
    assert out.shape == (2, 96, 96, 3)
    assert out.dtype == np.uint8
    assert fits == ["l1", "bce"]  # one colour fit, one coverage fit, for both planes
    # the input's own lightness is kept
    np.testing.assert_allclose(
        rgb_to_lab(out)[..., 0], rgb_to_lab(stack[..., None].repeat(3, -1))[..., 0], atol=1.0
    )


def test_colorize_propagate_with_point_hints():
    lightness = _two_regions()
    colors = lab_to_rgb(np.array([[50.0, *RED_AB], [50.0, *BLUE_AB]]))
    hints = PointHints([[10, 5], [40, 60]], colors, 1.0, lightness.shape)
    out = napari_colorize.colorize(
        lightness / 100.0, model="propagate", hints=hints, value_range=(0, 1)
    )
    ab = rgb_to_lab(out)[..., 1:]
    assert ab[:, :28, 0].mean() > 30.0  # red side
    assert ab[:, 36:, 1].mean() < -25.0  # blue side


def test_reference_and_model_names_are_checked():
    with pytest.raises(ValueError, match="needs a colour image"):
        Colorizer("reference")
    with pytest.raises(ValueError, match="cannot be combined"):
        Colorizer("beta-punks", reference=np.zeros((8, 8, 3), np.uint8))


def test_networks_without_a_hint_branch_are_corrected_by_hints():
    import torch

    class Gray(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 2, *x.shape[-2:])

    lightness = _two_regions()
    hints = _hints(lightness.shape, [(10, 5, RED_AB)])
    colorizer = Colorizer(Gray(), device="cpu", chroma_size=None, hints=hints)
    assert colorizer.corrector is not None
    assert not colorizer.model_takes_hints
    ab = colorizer.predict_ab(lightness / 100.0, value_range=(0, 1))
    np.testing.assert_allclose(ab[10, 5], RED_AB, atol=2.0)
    assert np.abs(ab[:, 40:]).max() < 1.0  # the other side of the edge keeps the network's gray
    plain = Colorizer(Gray(), device="cpu", hints=hints, correct_with_hints=False)
    assert not plain.predict_ab(lightness / 100.0, value_range=(0, 1)).any()
