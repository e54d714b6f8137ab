"""BatchNorm folded into convolutions: the same function, fewer layers, the original untouched."""

import pytest
import torch
from torch import nn

from napari_colorize.models.folding import count_foldable, fold_batchnorm, prepare_for_inference
from napari_colorize.models.fused_conv import FusedConv2d, fused_conv_available
from napari_colorize.registry import build_model


def _trained_statistics(model, shape=(4, 1, 32, 32), steps=3):
    """Give the BatchNorms non-trivial running statistics and affine parameters."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        for _ in range(steps):
            model(torch.rand(shape) * 2 - 1)
    return model.eval()


def _bundled():
    from napari_colorize.registry import load_model

    model = load_model("beta-punks")
    return (model[0] if isinstance(model, tuple) else model).eval()


@pytest.mark.parametrize(
    "make",
    [lambda: _trained_statistics(build_model("beta", {"widths": [8, 16], "norm": "batch"})),
     _bundled],
    ids=["beta", "beta-punks"],
)  # fmt: skip
def test_folding_keeps_the_function(make):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = count_foldable(model)
    assert n > 0
    folded = fold_batchnorm(model)
    assert count_foldable(folded) == 0
    assert (
        sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) - n
    )
    x = torch.rand(2, 1, 40, 48) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)
    for key, value in model.state_dict().items():  # the original is untouched
        torch.testing.assert_close(value, before[key])


def test_only_a_norm_right_after_a_conv_is_folded():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.BatchNorm2d(4),  # after the ReLU: not foldable
        nn.Conv2d(4, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
    )
    model = _trained_statistics(model, shape=(4, 1, 16, 16))
    assert count_foldable(model) == 1
    folded = fold_batchnorm(model)
    assert isinstance(folded[2], nn.BatchNorm2d)
    assert isinstance(folded[4], nn.Identity)
    x = torch.rand(1, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)


def test_nothing_to_fold_returns_the_model_itself():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh()).train()
    assert fold_batchnorm(model) is model
    assert not model.training


# ------------------------------------------------ prepare_for_inference


def _kinds(model):
    return {type(m).__name__ for m in model.modules()}


@pytest.mark.parametrize(
    "make",
    [lambda: _trained_statistics(build_model("beta", {"widths": [8, 16, 32], "norm": "batch"})),
     _bundled],
    ids=["beta", "beta-punks"],
)  # fmt: skip
def test_prepared_network_keeps_the_function(make):
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare_for_inference(model, "cpu")
    kinds = _kinds(prepared)
    assert "BatchNorm2d" not in kinds
    assert "_ProjectedDecoderStage" in kinds
    assert "_DecoderStage" not in kinds
    assert ("FusedConv2d" in kinds) == fused_conv_available()
    x = torch.rand(2, 1, 40, 48) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), model(x), atol=1e-5, rtol=1e-4)
        xl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(prepared(xl), model(x), atol=1e-5, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast's dtype is honoured
            fast, plain = prepared(x), model(x)
        assert fast.dtype == plain.dtype == torch.bfloat16
        torch.testing.assert_close(fast.float(), plain.float(), atol=0.05, rtol=0)
    for key, value in model.state_dict().items():  # the original is untouched
        torch.testing.assert_close(value, before[key])


def test_a_groupnorm_decoder_stage_is_kept():
    # GroupNorm's statistics see the whole image: projecting before upsampling would differ
    model = build_model("beta", {"widths": [8, 16], "norm": "group"}).eval()
    prepared = prepare_for_inference(model, "cpu")
    assert "_DecoderStage" in _kinds(prepared)
    x = torch.rand(1, 1, 24, 24) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), model(x), atol=1e-5, rtol=1e-4)


def test_fusing_is_for_the_cpu_only():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    assert "FusedConv2d" not in _kinds(prepare_for_inference(model, "meta"))
    assert prepare_for_inference(model, "meta") is model  # nothing else applies: no copy
    prepared = prepare_for_inference(model, "cpu")
    if not fused_conv_available():
        pytest.skip("this torch has no oneDNN fused convolution")
    assert prepared is not model
    assert isinstance(prepared[0], FusedConv2d)
    assert isinstance(prepared[1], nn.Identity)
    assert type(prepared[2]) is nn.Conv2d  # no ReLU after it: left as it is
    x = torch.randn(2, 1, 9, 11)
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), model(x), atol=1e-6, rtol=1e-5)


def test_a_fused_conv_falls_back_where_gradients_are_needed():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    fused = FusedConv2d(conv, relu=True)
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    y = fused(x)
    y.sum().backward()  # the plain path keeps autograd
    assert x.grad is not None
    torch.testing.assert_close(y, torch.relu(conv(x)))


def test_a_fused_conv_runs_bf16_plainly_where_onednn_cannot(monkeypatch):
    """CPUs before AVX-512: oneDNN refuses bf16, torch's own bf16 convolution runs it."""
    import napari_colorize.models.fused_conv as fused_conv

    conv = nn.Conv2d(2, 3, 3, padding=1)
    fused = FusedConv2d(conv, relu=True)
    x = torch.randn(1, 2, 8, 8)
    calls = []
    real = fused_conv._pointwise
    monkeypatch.setattr(fused_conv, "_pointwise", lambda: calls.append(1) or real())
    monkeypatch.setattr(fused_conv, "onednn_bf16_available", lambda: False)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = fused(x)
    assert calls == []
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), torch.relu(conv(x)), atol=0.05, rtol=0.02)
