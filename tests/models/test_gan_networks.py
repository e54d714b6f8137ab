"""The gan generator (models/gan.py) and its multi-scale discriminator (discriminator.py)."""

import pytest
import torch
from torch import nn

from napari_colorize.models.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from napari_colorize.models.gan import (
    SelfAttention,
    UNetColorizer,
    UNetConfig,
    init_encoder_from_inception,
    punks_config,
)

TINY = UNetConfig(widths=(8, 16, 16), stem=4, attention=(1,))


# tiny convs on a shared 2-core machine: a second thread only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _has_sn(module: nn.Module) -> bool:
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        UNetConfig(widths=(8, 16), stem=0, attention=(1,), attention_in="both", norm="none"),
        UNetConfig(widths=(8,), stem=4, attention=(), spectral_norm=False, norm="group"),
        UNetConfig(widths=(8, 16), stem=4, attention=(0,), attention_in="encoder", hints=True),
    ],
    ids=["tiny", "no-stem-both-attention", "one-level-no-sn", "hints"],
)
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (24, 24), (23, 37)])
def test_any_size_gives_ab_of_the_same_size(config, size):
    model = UNetColorizer(config).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, *size) * 2 - 1)
    assert out.shape == (2, 2, *size)
    assert out.abs().max() <= 1.0


def test_hints_are_used_and_checked():
    model = UNetColorizer(UNetConfig(widths=(8, 16), stem=4, attention=(), hints=True)).eval()
    assert model.config.in_channels == 4
    l_net = torch.rand(1, 1, 8, 8) * 2 - 1
    hints = torch.zeros(1, 3, 8, 8)
    hints[:, :2, 3, 3], hints[:, 2, 3, 3] = 0.5, 1.0
    with torch.no_grad():
        assert not torch.equal(model(l_net), model(l_net, hints=hints))
    with pytest.raises(ValueError, match="hint"):
        model(l_net, hints=torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="takes no hints"):
        UNetColorizer(TINY)(l_net, hints=hints)


def test_spectral_norm_where_configured():
    with_sn = UNetColorizer(TINY)
    convs = [m for m in with_sn.modules() if isinstance(m, nn.Conv2d)]
    assert convs
    assert all(_has_sn(m) for m in convs)
    keys = with_sn.state_dict()
    assert any(k.endswith("parametrizations.weight.original") for k in keys)
    assert any(k.endswith("parametrizations.weight.0._u") for k in keys)
    without = UNetColorizer(UNetConfig(widths=(8, 16), spectral_norm=False, attention=()))
    assert not any(_has_sn(m) for m in without.modules())

    d = MultiScaleDiscriminator(DiscriminatorConfig(width=4, n_layers=2, num_scales=3))
    d_convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(d_convs) == 3 * 4
    assert all(_has_sn(m) for m in d_convs)
    plain = MultiScaleDiscriminator(DiscriminatorConfig(width=4, spectral_norm=False))
    assert not any(_has_sn(m) for m in plain.modules())


def test_self_attention_starts_as_identity_and_learns_gamma():
    att = SelfAttention(16)
    assert att.gamma.item() == 0.0
    assert att.gamma.requires_grad
    x = torch.randn(2, 16, 5, 3)
    assert torch.equal(att(x), x)
    att(x).square().sum().backward()
    assert att.gamma.grad is not None
    assert att.gamma.grad.abs().item() > 0
    with torch.no_grad():
        att.gamma.fill_(0.5)
    assert not torch.allclose(att(x), x)
    model = UNetColorizer(UNetConfig(widths=(8, 16, 16), attention=(0, 2), attention_in="both"))
    assert sum(isinstance(m, SelfAttention) for m in model.modules()) == 4


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"levels 0\.\.1"):
        UNetConfig(widths=(8, 16), attention=(2,))
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="layer")
    with pytest.raises(ValueError, match="attention_in"):
        UNetConfig(attention_in="middle")


def test_gradient_checkpointing_gives_the_same_gradients_and_statistics():
    torch.manual_seed(0)
    a = UNetColorizer(TINY)
    b = UNetColorizer(TINY)
    b.load_state_dict(a.state_dict())
    b.set_gradient_checkpointing(True)
    x = torch.rand(3, 1, 12, 12) * 2 - 1
    for m in (a, b):
        m(x).square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)
    # recomputation neither updates BN running statistics nor the SN power iteration twice
    for (name, ba), bb in zip(a.named_buffers(), b.buffers()):
        torch.testing.assert_close(ba, bb, msg=name)


def test_channels_last_gives_the_same_output():
    model = UNetColorizer(TINY).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        ref = model(x)
        model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_discriminator_features_per_scale():
    d = MultiScaleDiscriminator(DiscriminatorConfig(width=4, n_layers=2, num_scales=3))
    outs = d(torch.rand(2, 1, 24, 24), torch.rand(2, 2, 24, 24))
    assert len(outs) == 3
    for feats in outs:
        assert len(feats) == 2 + 2  # n_layers strided + 1 stride-1 + the score map
        assert feats[-1].shape[:2] == (2, 1)
    # the coarser scales see smaller inputs
    assert outs[0][0].shape[-1] > outs[1][0].shape[-1] > outs[2][0].shape[-1]
    with pytest.raises(ValueError, match="L \\+ ab"):
        d(torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 8))


def test_encoder_init_copies_only_what_fits():
    from napari_colorize.models.inception import InceptionConfig, InceptionV3

    clf = InceptionV3(InceptionConfig(width=0.25, in_channels=1, grayscale=True, num_classes=3))
    model = UNetColorizer(UNetConfig(widths=(8, 16), stem=0, attention=(), spectral_norm=False))
    copied = init_encoder_from_inception(model, clf)
    assert "encoder.0.down.0.weight" in copied
    assert "encoder.1.down.0.weight" in copied
    torch.testing.assert_close(model.encoder[0].down[0].weight, clf.Conv2d_1a_3x3.conv.weight)
    torch.testing.assert_close(model.encoder[1].down[0].weight, clf.Conv2d_2b_3x3.conv.weight)
    # a generator of other widths takes nothing
    other = UNetColorizer(punks_config())
    assert init_encoder_from_inception(other, clf) == []
