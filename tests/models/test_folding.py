"""BatchNorm folded into convolutions: the same function, fewer layers, the original untouched."""

import pytest
import torch
from torch import nn

from napari_colorize.models.folding import count_foldable, fold_batchnorm
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
