"""The alpha and beta colorizers: shapes for any size, the beta-original layout, hooks."""

import pytest
import torch
from torch import nn

from napari_colorize.models.alpha import AlphaColorizer, AlphaConfig
from napari_colorize.models.beta import (
    BetaColorizer,
    BetaConfig,
    beta_original_config,
)
from napari_colorize.models.blocks import count_macs, parse_layer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_BETA = BetaConfig(widths=(4, 8, 8))


@pytest.mark.parametrize(
    "model",
    [
        AlphaColorizer(AlphaConfig(width=2)),
        BetaColorizer(TINY_BETA),
        BetaColorizer(BetaConfig(widths=(4, 8), norm="group")),
        BetaColorizer(beta_original_config()),
    ],
    ids=["alpha", "beta", "beta-groupnorm", "beta-original"],
)
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (24, 24), (23, 37)])
def test_any_size_gives_ab_of_the_same_size(model, size):
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, *size) * 2 - 1)
    assert out.shape == (2, 2, *size)
    assert out.abs().max() <= 1.0


def test_beta_original_matches_the_originating_network():
    model = BetaColorizer(beta_original_config())
    layers = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            assert m.kernel_size == (3, 3)
            layers.append(f"{m.out_channels}" + (f"/{m.stride[0]}" if m.stride[0] > 1 else ""))
        elif isinstance(m, nn.Upsample):
            assert m.scale_factor == 2
            layers.append("up")
        elif isinstance(m, nn.Tanh):
            layers[-1] += " tanh"
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            pytest.fail("the original network has no normalisation")
    assert layers == [
        "64", "64/2", "128", "128/2", "256", "256/2", "512", "256", "128",
        "up", "64", "up", "32", "2 tanh", "up",
    ]  # fmt: skip
    n_relu = sum(isinstance(m, nn.ReLU) for m in model.modules())
    assert n_relu == 11  # every conv but the tanh one
    assert model.downsampling == 8


def test_layer_specs_are_parsed_and_bad_ones_explained():
    assert parse_layer("64/2") == ("conv", 64, 2)
    assert parse_layer("2t") == ("tanh", 2, 1)
    assert parse_layer("up") == ("up", 0, 1)
    with pytest.raises(ValueError, match="bad layer spec"):
        parse_layer("wide")


def test_encode_decode_compose_to_forward():
    model = BetaColorizer(TINY_BETA).eval()
    x = torch.rand(1, 1, 13, 10)
    with torch.no_grad():
        padded, size = model.prepare_input(x)
        assert padded.shape[-2:] == (16, 12)
        features, skips = model.encode(padded)
        assert features.shape[1] == model.encoder_channels
        ab = model.decode(features, skips)[..., : size[0], : size[1]]
        assert torch.equal(ab, model(x))


def test_hint_channels_are_an_optional_input():
    model = BetaColorizer(BetaConfig(widths=(4, 8), in_channels=4)).eval()
    l_net = torch.zeros(1, 1, 8, 8)
    with torch.no_grad():
        assert model(l_net).shape == (1, 2, 8, 8)  # no hints: zeros
        assert model(l_net, hints=torch.ones(1, 3, 8, 8)).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="hints must be"):
        model(l_net, hints=torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="hints must be"):
        BetaColorizer(TINY_BETA)(l_net, hints=torch.ones(1, 3, 8, 8))


def test_bad_configs_and_inputs_are_explained():
    with pytest.raises(ValueError, match="layout"):
        BetaConfig(layout="resnet")
    with pytest.raises(ValueError, match="encoder_layers"):
        BetaConfig(layout="sequential")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        BetaColorizer(TINY_BETA)(torch.zeros(1, 3, 8, 8))


def test_configs_survive_json_through_the_registry():
    from napari_colorize.registry import build_model

    model = build_model("beta", beta_original_config().to_dict())
    assert model.config == beta_original_config()
    alpha = build_model("alpha", AlphaConfig(width=4).to_dict())
    assert alpha.config == AlphaConfig(width=4)


def test_default_beta_is_cheap_enough_for_large_images():
    # A benchmark colorizes 4096^2 images at a working size of 256-512 on 2 cores.
    macs = count_macs(BetaColorizer(), (256, 256))
    assert macs < 1.5e9
    assert macs < count_macs(BetaColorizer(beta_original_config()), (256, 256)) / 4
