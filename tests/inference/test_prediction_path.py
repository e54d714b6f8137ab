"""One prediction path: evaluate, the benchmarks and the Colorizer show and score the same RGB.

``color.l_ab_to_rgb`` is the one gamut policy (keep L, move out-of-gamut colours
towards the gray of the same luminance); the Colorizer's composer uses it, and
``evaluate`` scores ``Colorizer.colorize_lightness``.
"""

import numpy as np
import pytest
import torch
from skimage.io import imsave

from napari_colorize import color, metrics
from napari_colorize.evaluation import evaluate
from napari_colorize.inference import Colorizer


class ConstantAB(torch.nn.Module):
    """The same ab everywhere (in Lab units), whatever L."""

    def __init__(self, ab):
        super().__init__()
        ab_net = color.ab_to_net(np.asarray(ab, np.float32))
        self.register_buffer("ab_net", torch.tensor(ab_net))
        self.conv = torch.nn.Conv2d(1, 2, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        return self.ab_net.view(1, 2, 1, 1).expand(n, 2, h, w) + 0.0 * self.conv(x)


def _lightness(shape=(2, 12, 16), seed=0):
    return np.random.default_rng(seed).uniform(5.0, 95.0, shape).astype(np.float32)


def test_l_ab_to_rgb_is_lab_to_rgb_inside_the_gamut():
    rgb = np.random.default_rng(1).uniform(0.0, 1.0, (3, 20, 20, 3))
    lab = color.rgb_to_lab(rgb)
    ours = color.l_ab_to_rgb(lab[..., 0], lab[..., 1:])
    plain = np.round(color.lab_to_rgb(lab) * 255.0)
    assert ours.dtype == np.uint8
    assert ours.shape == rgb.shape
    assert np.abs(ours.astype(float) - plain).max() <= 1


def test_l_ab_to_rgb_keeps_lightness_where_lab_to_rgb_clips():
    lightness = np.array([[30.0, 50.0, 70.0, 90.0]], np.float32)
    ab = np.array([[[90.0, 90.0], [-120.0, 100.0], [100.0, -110.0], [80.0, 0.0]]], np.float32)
    lab = np.concatenate([lightness[..., None], ab], -1)
    clipped = color.rgb_to_lab(color.lab_to_rgb(lab))
    ours = color.rgb_to_lab(color.l_ab_to_rgb(lightness, ab))
    assert np.abs(clipped[..., 0] - lightness).max() > 2  # clipping changes L
    assert np.abs(ours[..., 0] - lightness).max() < 0.6  # up to uint8 rounding
    # towards gray: the hue stays, the chroma shrinks
    hue = np.angle(ab[..., 0] + 1j * ab[..., 1])
    ours_hue = np.angle(ours[..., 1] + 1j * ours[..., 2])
    assert np.abs(np.angle(np.exp(1j * (hue - ours_hue)))).max() < 0.35
    assert np.all(np.hypot(ours[..., 1], ours[..., 2]) < np.hypot(ab[..., 0], ab[..., 1]))


def test_l_ab_to_rgb_names_the_shapes_it_wants():
    with pytest.raises(ValueError, match=r"ab of shape \(\.\.\., 2\) beside it"):
        color.l_ab_to_rgb(np.zeros((4, 4)), np.zeros((4, 4, 3)))
    assert color.l_ab_to_rgb(np.float32(50.0), np.zeros(2)).shape == (3,)


def test_colorizer_shows_the_colour_policy():
    lightness = _lightness()
    model = ConstantAB((70.0, -90.0))  # out of gamut for most L
    with Colorizer(model, device="cpu", chroma_size=None) as colorizer:
        shown = colorizer.colorize_lightness(lightness)
        ab = colorizer.colorize_lightness(lightness, output="ab")
    np.testing.assert_array_equal(shown, color.l_ab_to_rgb(lightness, ab))
    np.testing.assert_allclose(ab[..., 0], 70.0, atol=1e-4)


def test_colorize_lightness_takes_float_l_only():
    with (
        Colorizer(ConstantAB((0.0, 0.0)), device="cpu") as colorizer,
        pytest.raises(ValueError, match="lightness must be float L in"),
    ):
        colorizer.colorize_lightness(np.zeros((8, 8), np.uint8))


def test_colorize_lightness_is_colorize_for_a_gray_image():
    gray = np.random.default_rng(2).integers(0, 256, (2, 16, 20), dtype=np.uint8)
    lightness = color.rgb_to_lab(np.repeat(gray[..., None], 3, -1))[..., 0]
    with Colorizer(ConstantAB((20.0, 40.0)), device="cpu") as colorizer:
        via_image = colorizer.colorize(gray, value_range=(0, 255))
        via_l = colorizer.colorize_lightness(lightness)
    assert np.abs(via_image.astype(int) - via_l.astype(int)).max() <= 1


def test_evaluate_scores_what_the_colorizer_shows(tmp_path):
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 256, (3, 10, 14, 3), dtype=np.uint8)
    for i, image in enumerate(truth):
        imsave(tmp_path / f"{i}.png", image, check_contrast=False)
    model = ConstantAB((60.0, -100.0))  # clipping and moving towards gray disagree here
    report = evaluate(model, str(tmp_path), device="cpu")

    lightness = color.rgb_to_lab(truth)[..., 0]
    with Colorizer(model, device="cpu") as colorizer:
        shown = colorizer.colorize_lightness(lightness)
    expected = metrics.score_images(shown, truth).summary()
    for key in ("ciede2000", "psnr", "ssim", "colorfulness"):
        assert report[key] == pytest.approx(expected[key], rel=1e-6), key


def test_gray_baseline_goes_through_the_same_policy(tmp_path):
    truth = np.random.default_rng(4).integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    for i, image in enumerate(truth):
        imsave(tmp_path / f"{i}.png", image, check_contrast=False)
    report = evaluate(baseline="gray", data=str(tmp_path))
    lightness = color.rgb_to_lab(truth)[..., 0]
    gray = color.l_ab_to_rgb(lightness, np.zeros((*lightness.shape, 2), np.float32))
    assert report["psnr"] == pytest.approx(metrics.score_images(gray, truth).summary()["psnr"])


def test_bioimageio_graph_follows_the_same_gamut_policy():
    from napari_colorize.bioimageio.graph import GrayToRGB, gray_to_l_torch

    gray = torch.linspace(0.05, 0.95, 40).view(1, 1, 5, 8)
    model = ConstantAB((70.0, -90.0))
    rgb = GrayToRGB(model, near=0, reference=0, default=0, multiple=1).eval()(gray)
    lightness = gray_to_l_torch(gray)[0, 0].numpy()
    ab = np.broadcast_to(np.float32([70.0, -90.0]), (*lightness.shape, 2))
    ours = color.l_ab_to_rgb(lightness, ab).astype(int)
    theirs = np.round(rgb[0].permute(1, 2, 0).detach().numpy() * 255).astype(int)
    assert np.abs(ours - theirs).max() <= 1


def test_merging_lab_layers_keeps_lightness_as_the_colorizer_does():
    from napari_colorize.layers import merge_lab

    lightness = np.full((2, 3), 60.0, np.float32)
    a, b = np.full_like(lightness, -110.0), np.full_like(lightness, 90.0)
    merged = merge_lab(lightness, a, b)
    ab = np.stack([a, b], -1)
    np.testing.assert_array_equal(merged, color.l_ab_to_rgb(lightness, ab))
    assert np.abs(color.rgb_to_lab(merged)[..., 0] - 60.0).max() < 0.6
