"""Training against the lightness lookup table: fit, start, report, shrink, presets."""

import numpy as np
import pytest
import torch

from napari_colorize.checkpoint import load_checkpoint
from napari_colorize.models.lightness_table import TABLE_BINS, LightnessTable
from napari_colorize.registry import build_model, load_model
from napari_colorize.training.baseline import (
    describe_validation,
    fit_dataset_table,
    is_colour_dataset,
    shrink_residual,
    supports_lightness_table,
    table_metrics,
    with_lightness_table,
)
from napari_colorize.training.events import StepEvent, TrainResult, ValidationEvent
from napari_colorize.training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"widths": [4, 8], "lightness_table": True}


def _lookup_data(n=8, size=8, seed=0, noise=0.0):
    """``(l_net, ab_net)`` pairs whose ab is a function of L (plus noise): the table's ideal."""
    rng = np.random.default_rng(seed)
    l_net = rng.uniform(-1, 1, (n, 1, size, size)).astype(np.float32)
    ab = np.concatenate([0.4 * l_net, 0.2 - 0.3 * l_net**2], axis=1)
    ab = ab + noise * rng.standard_normal(ab.shape)
    return torch.utils.data.TensorDataset(
        torch.from_numpy(l_net), torch.from_numpy(ab.astype(np.float32))
    )


def _config(out=None, **kw):
    base = {"arch": "beta", "model_config": TINY, "max_steps": 4, "batch_size": 4,
            "lr": 3e-3, "amp": False, "device": "cpu", "seed": 1, "out": out}  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_a_dataset_table_comes_from_a_sample_of_its_items():
    data = _lookup_data(n=10)
    table = fit_dataset_table(data)
    probe = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
    pred = LightnessTable().set_table(table)(probe)
    want = torch.cat([0.4 * probe, 0.2 - 0.3 * probe**2], 1)
    assert (pred - want).abs().max() < 0.02
    # two items are enough to give a table; the same two give the same table
    np.testing.assert_array_equal(fit_dataset_table(data, max_items=2),
                                  fit_dataset_table(data, max_items=2))  # fmt: skip
    assert is_colour_dataset(data)
    labels = torch.utils.data.TensorDataset(torch.zeros(2, 1, 8, 8), torch.zeros(2, 92))
    assert not is_colour_dataset(labels)
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, 2, 8, 8))
    with pytest.raises(ValueError, match="empty dataset"):
        fit_dataset_table(empty)
    with pytest.raises(ValueError, match="max_items"):
        fit_dataset_table(data, max_items=0)


def test_table_metrics_are_the_tables_own_errors():
    data = _lookup_data(n=4)
    assert table_metrics(fit_dataset_table(data), data)["table_delta_e"] < 1.5
    gray = np.zeros((TABLE_BINS, 2), np.float32)
    found = table_metrics(gray, data, loss_fn=torch.nn.functional.l1_loss)
    ab = torch.stack([item[1] for item in data]) * 128
    assert found["table_delta_e"] == pytest.approx(float(ab.norm(dim=1).mean()), rel=1e-4)
    assert found["table_loss"] == pytest.approx(float(ab.abs().mean() / 128), rel=1e-4)
    assert table_metrics(None, data) == {}


def test_a_new_model_starts_as_the_table_of_its_training_data(tmp_path):
    train, val = _lookup_data(n=8, seed=0), _lookup_data(n=4, seed=1)
    trainer = Trainer(_config(tmp_path / "t.safetensors", max_steps=1), train, val)
    trainer._setup()
    with torch.no_grad():
        l_net = val[0][0][None]
        torch.testing.assert_close(
            trainer.model.eval()(l_net), trainer.model.lightness_table(l_net)
        )
    np.testing.assert_array_equal(
        trainer.model.lightness_table.table.numpy(), fit_dataset_table(train)
    )


def test_a_run_reports_the_table_next_to_the_model_and_stores_it(tmp_path):
    out = tmp_path / "run.safetensors"
    train, val = _lookup_data(n=8, seed=0, noise=0.05), _lookup_data(n=4, seed=1, noise=0.05)
    trainer = Trainer(_config(out, max_steps=4, val_every=2), train, val)
    events = list(trainer.run())
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert vals
    for event in vals:
        assert {"val_delta_e", "val_table_delta_e", "val_loss", "val_table_loss"} <= set(
            event.metrics
        )
    # computed once: the same figure in every event
    assert len({e.metrics["val_table_delta_e"] for e in vals}) == 1
    result = events[-1]
    assert isinstance(result, TrainResult)
    assert result.metrics["val_table_delta_e"] == vals[0].metrics["val_table_delta_e"]
    ckpt = load_checkpoint(out)
    assert ckpt.meta.metrics["val_table_delta_e"] == result.metrics["val_table_delta_e"]
    assert ckpt.meta.config["lightness_table"] is True
    np.testing.assert_array_equal(ckpt.model_state["lightness_table.table"].numpy(),
                                  fit_dataset_table(train))  # fmt: skip
    # the saved model is usable as it is, and never worse than its table on validation
    assert result.metrics["val_delta_e"] <= result.metrics["val_table_delta_e"] + 1e-4
    _model, meta = load_model(out)
    assert meta.metrics["val_delta_e"] == result.metrics["val_delta_e"]


def test_models_without_a_table_are_still_compared_with_one():
    train, val = _lookup_data(n=8, seed=0), _lookup_data(n=4, seed=1)
    result = Trainer(_config(model_config={"widths": [4, 8]}, max_steps=2), train, val).fit()
    assert result.metrics["val_table_delta_e"] < result.metrics["val_delta_e"]
    # no validation data: nothing to report, and no table to fit for a model without one
    trainer = Trainer(_config(model_config={"widths": [4, 8]}, max_steps=1), train)
    assert "val_table_delta_e" not in trainer.fit().metrics
    assert trainer.table is None


def test_a_residual_worse_than_the_table_is_shrunk():
    data = _lookup_data(n=4)
    model = build_model("beta", TINY).eval()
    model.lightness_table.set_table(fit_dataset_table(data))
    with torch.no_grad():  # a residual that only hurts
        model.head[0].bias.fill_(0.5)

    def validate():
        from napari_colorize.training.baseline import table_metrics as tm

        errors = []
        with torch.no_grad():
            for l_net, ab in data:
                errors.append(float(((model(l_net[None]) - ab[None]) * 128).norm(dim=1).mean()))
        table = tm(model.lightness_table.table.numpy(), data)["table_delta_e"]
        return {"val_delta_e": float(np.mean(errors)), "val_table_delta_e": table}

    before = validate()
    assert before["val_delta_e"] > before["val_table_delta_e"]
    scale, after = shrink_residual(model, before, validate)
    assert scale < 1.0
    assert float(model.lightness_table.residual_scale) == scale
    assert after["val_delta_e"] <= after["val_table_delta_e"] + 1e-4
    # a model as good as its table, or one without a table, is left alone
    assert shrink_residual(model, after, validate) is None
    assert shrink_residual(build_model("beta", {"widths": [4, 8]}), before, validate) is None


def test_resuming_a_shrunk_run_trains_the_full_residual_exactly(tmp_path):
    # ab is exactly a function of L: any residual only hurts, so a stopped run is shrunk
    train, val = _lookup_data(n=8, seed=0), _lookup_data(n=4, seed=1)
    cfg = {"max_steps": 6, "val_every": 1, "lr": 1e-2}
    straight = Trainer(_config(tmp_path / "a.safetensors", **cfg), train, val)
    losses_a = [e.loss for e in straight.run() if isinstance(e, StepEvent)]

    first = Trainer(_config(tmp_path / "b.safetensors", **cfg), train, val)
    losses_b = []
    for e in first.run():
        if isinstance(e, StepEvent):
            losses_b.append(e.loss)
            if e.step == 3:
                first.request_stop()
    assert float(load_checkpoint(tmp_path / "b.safetensors").model_state[
        "lightness_table.residual_scale"]) < 1.0  # fmt: skip
    resumed = Trainer.resume(tmp_path / "b.safetensors", train, val)
    losses_b += [e.loss for e in resumed.run() if isinstance(e, StepEvent)]
    assert losses_b == losses_a


def test_a_short_run_on_a_real_image_ends_no_worse_than_the_table():
    import skimage.data
    from skimage.transform import resize

    from napari_colorize.data.layer_datasets import LayerArray, layer_datasets

    for name in ("immunohistochemistry", "coffee"):
        rgb = getattr(skimage.data, name)()
        small = (resize(rgb, (64, 96), anti_aliasing=True) * 255).round().astype(np.uint8)
        data = layer_datasets([LayerArray(name, small, True)], 16, split="regions",
                              val_fraction=0.5, seed=0)  # fmt: skip
        config = _config(model_config={"widths": [8, 16], "lightness_table": True},
                         max_steps=30, batch_size=8, val_every=10)  # fmt: skip
        metrics = Trainer(config, data.train, data.val).fit().metrics
        assert metrics["val_delta_e"] <= metrics["val_table_delta_e"] + 1e-4, name


def test_layer_folder_and_photo_runs_turn_the_table_on(tmp_path):
    from skimage.io import imsave

    from napari_colorize.training.presets import get_preset, preset_run

    assert supports_lightness_table("alpha")
    assert supports_lightness_table("beta")
    assert supports_lightness_table("gan")
    assert not supports_lightness_table("inception")
    assert not supports_lightness_table("no-such-arch")
    assert with_lightness_table("beta", {"widths": [4]}) == {
        "widths": [4],
        "lightness_table": True,
    }
    assert with_lightness_table("beta", {"lightness_table": False}) == {"lightness_table": False}
    assert with_lightness_table("inception", {}) == {}

    assert get_preset("alpha").config().model_config["lightness_table"] is True
    assert "lightness_table" not in get_preset("beta-punks").config().model_config
    folder = tmp_path / "images"
    folder.mkdir()
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    imsave(folder / "a.png", rgb, check_contrast=False)
    config, _train, _val = preset_run("beta-punks", data=f"folder:{folder}", max_steps=1)
    assert config.model_config["lightness_table"] is True


def test_the_validation_line_compares_model_and_table():
    metrics = {"val_delta_e": 3.9, "val_table_delta_e": 5.1}
    assert describe_validation(metrics) == "val ΔE 3.90 (lookup table 5.10)"
    assert describe_validation({"val_delta_e": 3.9}) == "val ΔE 3.90"
    assert describe_validation({"val_loss": 0.1}) == ""
