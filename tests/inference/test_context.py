"""overlap="auto": the context a network needs, measured once, sets how far tiles overlap."""

import numpy as np
import pytest
import torch
from torch import nn

from napari_colorize.inference import Colorizer
from napari_colorize.inference.context import CROSS_FADE, context_margin


class Dilated(nn.Module):
    """3x3 convs dilated by ``dilation``: the output depends on pixels within ``2 * dilation``."""

    def __init__(self, dilation):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(1, 4, 3, padding=dilation, dilation=dilation)
        self.b = nn.Conv2d(4, 2, 3, padding=dilation, dilation=dilation)

    def forward(self, x):
        return torch.tanh(self.b(torch.relu(self.a(x))))


class GlobalMean(nn.Module):
    """Every output pixel depends on the whole image."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, x):
        mean = x.mean(dim=(-2, -1), keepdim=True) * self.weight
        return torch.tanh(mean).expand(-1, 2, *x.shape[-2:])


def _counting(model):
    calls = []

    def forward(x):
        calls.append(tuple(x.shape))
        with torch.no_grad():
            return model(x)

    return forward, calls


@pytest.mark.parametrize(("dilation", "margin"), [(1, 8), (5, 16), (11, 24)])
def test_the_margin_covers_the_receptive_field(dilation, margin):
    forward, _ = _counting(Dilated(dilation))
    assert context_margin(Dilated(dilation), forward) == margin  # 2 * dilation, rounded up


def test_a_network_that_sees_everything_has_no_margin():
    model = GlobalMean()
    forward, calls = _counting(model)
    assert context_margin(model, forward) is None
    assert len(calls) == 2  # the whole image, then the largest margin: no search

    colorizer = Colorizer(model, device="cpu", chroma_size=None, tile=512)
    assert colorizer.tile_overlap() == 64  # the fixed overlap


def test_the_margin_is_measured_once_per_network():
    model = Dilated(1)
    forward, calls = _counting(model)
    context_margin(model, forward)
    n = len(calls)
    assert n >= 2
    assert context_margin(model, forward) == 8
    assert len(calls) == n


def test_the_colorizer_overlaps_tiles_by_the_measured_context():
    gray = (np.random.default_rng(0).random((150, 150)) * 255).astype(np.uint8)
    auto = Colorizer(Dilated(5), device="cpu", chroma_size=None, tile=128)
    assert auto.overlap == "auto"
    assert auto.tile_overlap() == 2 * 16 + CROSS_FADE  # a margin of 16 dropped on each side
    whole = Colorizer(Dilated(5), device="cpu", chroma_size=None, tile=512).predict_ab(gray)
    np.testing.assert_allclose(auto.predict_ab(gray), whole, atol=1e-4)
    fixed = Colorizer(Dilated(5), device="cpu", chroma_size=None, tile=64, overlap=8)
    assert fixed.tile_overlap() == 8


class NeedsAnInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x, *, style):
        return torch.tanh(self.conv(x) + style)


def test_a_network_the_probe_cannot_run_gets_the_fixed_overlap():
    colorizer = Colorizer(NeedsAnInput(), device="cpu", chroma_size=None, tile=64)
    assert colorizer.tile_overlap() == 64  # the fixed overlap


@pytest.mark.parametrize("overlap", ["big", -1, 2.5, True])
def test_a_bad_overlap_is_one_clear_error(overlap):
    with pytest.raises(ValueError, match="overlap must be an integer >= 0 or 'auto'"):
        Colorizer(Dilated(1), device="cpu", overlap=overlap)


def test_a_generator_without_hints_is_probed_without_them():
    from napari_colorize.models.gan import UNetColorizer, UNetConfig

    torch.manual_seed(0)
    plain = UNetColorizer(UNetConfig(widths=(8, 16), attention=(), hints=False)).eval()
    colorizer = Colorizer(plain, device="cpu", chroma_size=None, tile=256)
    assert not colorizer.model_takes_hints
    assert colorizer.tile_overlap() != 64  # measured, not the fixed fallback
