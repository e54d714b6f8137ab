"""The lightness lookup table: its fit, its torch op, and models that add a residual to it."""

import numpy as np
import pytest
import torch

from napari_colorize.models.lightness_table import (
    TABLE_BINS,
    LightnessTable,
    LightnessTableFit,
    fit_lightness_table,
    zero_last_conv,
)
from napari_colorize.registry import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mapping(l_net):
    """A known smooth lightness -> ab mapping (ab_to_net units)."""
    return np.stack([0.4 * l_net, 0.3 - 0.5 * l_net**2], axis=-3)


def test_the_table_fits_a_known_mapping():
    rng = np.random.default_rng(0)
    l_net = rng.uniform(-1, 1, (4, 1, 32, 32)).astype(np.float32)
    ab = _mapping(l_net[:, 0]).astype(np.float32)
    table = fit_lightness_table(l_net, ab)
    assert table.shape == (TABLE_BINS, 2)
    assert table.dtype == np.float32

    probe = torch.linspace(-1, 1, 333).reshape(1, 1, 9, 37)
    pred = LightnessTable().set_table(table)(probe).numpy()
    want = _mapping(probe.numpy()[:, 0])
    assert pred.shape == (1, 2, 9, 37)
    # each bin averages the mapping over its width (0.02 of the net's range): small error
    assert np.abs(pred - want).max() < 0.01


def test_fitting_in_parts_equals_fitting_at_once_and_torch_inputs_work():
    rng = np.random.default_rng(1)
    l_net = rng.uniform(-1, 1, (3, 1, 8, 8)).astype(np.float32)
    ab = rng.uniform(-0.5, 0.5, (3, 2, 8, 8)).astype(np.float32)
    fit = LightnessTableFit()
    for i in range(3):
        fit.add(torch.from_numpy(l_net[i]), torch.from_numpy(ab[i]))
    assert fit.n_pixels == 3 * 64
    np.testing.assert_allclose(fit.table(), fit_lightness_table(l_net, ab), atol=1e-6)


def test_empty_bins_are_interpolated_and_no_pixels_is_gray():
    # only black (L=0) and white (L=100) pixels: the table between them is a straight line
    l_net = np.array([-1.0, 1.0], np.float32).reshape(1, 1, 1, 2)
    ab = np.array([[-0.5, 0.5], [0.2, 0.4]], np.float32).reshape(1, 2, 1, 2)
    table = fit_lightness_table(l_net, ab)
    np.testing.assert_allclose(table[:, 0], np.linspace(-0.5, 0.5, TABLE_BINS), atol=1e-6)
    np.testing.assert_allclose(table[:, 1], np.linspace(0.2, 0.4, TABLE_BINS), atol=1e-6)
    # one lightness only: constant everywhere
    flat = fit_lightness_table(np.zeros((1, 1, 2, 2)), np.full((1, 2, 2, 2), 0.25))
    np.testing.assert_allclose(flat, 0.25)
    assert not LightnessTableFit().table().any()
    # NaN pixels are left out
    l_nan = np.array([0.0, np.nan], np.float32).reshape(1, 1, 1, 2)
    assert np.isfinite(fit_lightness_table(l_nan, np.zeros((1, 2, 1, 2)))).all()


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match=r"\(\.\.\., 1, H, W\)"):
        LightnessTableFit().add(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="ab must be"):
        LightnessTableFit().add(np.zeros((1, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="at least 2 bins"):
        LightnessTableFit(bins=1)
    with pytest.raises(ValueError, match="must have shape"):
        LightnessTable().set_table(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        LightnessTable().set_table(np.full((TABLE_BINS, 2), np.nan))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        LightnessTable()(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="no Conv2d"):
        zero_last_conv(torch.nn.ReLU())


TABLE_MODELS = [
    ("alpha", {"width": 2}),
    ("beta", {"widths": [4, 8]}),
    ("beta", {"layout": "sequential", "norm": "none", "widths": [],
              "encoder_layers": ["4/2", "8"], "decoder_layers": ["2t", "up"]}),
    ("beta", {"widths": [4, 8], "in_channels": 4, "local_hints": True}),
    ("gan", {"widths": [8, 16], "stem": 4, "attention": []}),
]  # fmt: skip


@pytest.mark.parametrize(("arch", "config"), TABLE_MODELS)
def test_an_untrained_model_with_a_table_predicts_the_table(arch, config):
    torch.manual_seed(0)
    model = build_model(arch, {**config, "lightness_table": True}).eval()
    rng = np.random.default_rng(0)
    table = rng.uniform(-0.5, 0.5, (TABLE_BINS, 2)).astype(np.float32)
    model.lightness_table.set_table(table)
    assert "lightness_table.table" in model.state_dict()
    l_net = torch.rand(2, 1, 13, 11) * 2 - 1
    with torch.no_grad():
        pred = model(l_net)
        want = model.lightness_table(l_net)
    assert pred.shape == (2, 2, 13, 11)
    torch.testing.assert_close(pred, want)
    # the residual learns: the output layer has gradients at step 0
    model.train()
    model(l_net).square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("arch", "config"), TABLE_MODELS)
def test_without_the_flag_a_model_has_no_table(arch, config):
    model = build_model(arch, config)
    assert not hasattr(model, "lightness_table")
    assert not any("lightness" in k for k in model.state_dict())


def test_a_checkpoint_carries_the_table(tmp_path):
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.registry import load_model

    model = build_model("beta", {"widths": [4, 8], "lightness_table": True}).eval()
    table = np.linspace(-0.3, 0.3, 2 * TABLE_BINS, dtype=np.float32).reshape(TABLE_BINS, 2)
    model.lightness_table.set_table(table)
    path = save_checkpoint(tmp_path / "t.safetensors", model.state_dict(), arch="beta",
                           config=model.config.to_dict())  # fmt: skip
    loaded, meta = load_model(path)
    assert meta.config["lightness_table"] is True
    np.testing.assert_array_equal(loaded.lightness_table.table.numpy(), table)
    l_net = torch.rand(1, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(l_net), model(l_net))


@pytest.mark.parametrize("name", ["beta-punks", "beta-punks-hints", "full-punks", "gan-punks"])
def test_bundled_checkpoints_load_without_a_table(name):
    from napari_colorize.registry import load_model

    model, meta = load_model(name)  # a strict load: the keys are exactly the file's
    assert not meta.config.get("lightness_table", False)
    assert not any(isinstance(m, LightnessTable) for m in model.modules())
