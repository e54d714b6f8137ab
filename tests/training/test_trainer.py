"""The trainer: events, exact resume, stop, atomic checkpoints, plain datasets, export."""

import numpy as np
import pytest
import torch

from napari_colorize.checkpoint import load_checkpoint
from napari_colorize.errors import CheckpointError
from napari_colorize.registry import load_model
from napari_colorize.training.events import (
    CheckpointEvent,
    PreviewEvent,
    StartEvent,
    StepEvent,
    TrainResult,
    ValidationEvent,
)
from napari_colorize.training.trainer import TrainConfig, Trainer, export_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"widths": [4, 8]}


def tiny_config(out=None, **kw):
    base = {
        "arch": "beta",
        "model_config": TINY,
        "max_steps": 6,
        "batch_size": 4,
        "out": out,
        "seed": 3,
    }
    base.update(kw)
    return TrainConfig(**base)


def drain(gen):
    """All events of a generator and its return value."""
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_events_come_in_order(tmp_path, rgb):
    out = tmp_path / "run.safetensors"
    cfg = tiny_config(out, max_steps=4, val_every=2, preview_every=2, checkpoint_every=2)
    events, returned = drain(Trainer(cfg, rgb, rgb[:3]).run())

    assert isinstance(events[0], StartEvent)
    assert events[0].total_steps == 4
    assert events[0].steps_per_epoch == 2
    assert events[-1] is returned
    assert isinstance(returned, TrainResult)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert [e.epoch for e in steps] == [0, 0, 1, 1]
    assert all(np.isfinite(e.loss) and e.lr > 0 and e.images_per_s > 0 for e in steps)
    assert steps[-1].eta_s == 0
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert [e.step for e in vals] == [2, 4]
    assert set(vals[0].metrics) == {
        "val_loss",
        "val_delta_e",
        "val_table_loss",
        "val_table_delta_e",
    }
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert [e.step for e in previews] == [2, 4]
    assert previews[0].rgb.shape == (8, 8, 3)
    assert previews[0].rgb.dtype == np.uint8
    ckpts = [e for e in events if isinstance(e, CheckpointEvent)]
    assert [(e.step, e.final) for e in ckpts] == [(2, False), (4, True)]
    assert returned.path == str(out)
    assert not returned.stopped
    assert returned.step == 4
    assert returned.metrics == vals[-1].metrics
    # the kinds of events a GUI relies on, in the order it sees them at step 2
    kinds = [type(e).__name__ for e in events if getattr(e, "step", None) == 2]
    assert kinds == ["StepEvent", "ValidationEvent", "PreviewEvent", "CheckpointEvent"]


def test_resume_continues_exactly(tmp_path, rgb):
    # 10 items in batches of 4: 2 steps per epoch, so step 3 stops mid-epoch
    cfg = {"patch_size": 6, "model_config": {"widths": [4, 8], "norm": "batch"}}
    straight = Trainer(tiny_config(tmp_path / "a.safetensors", **cfg), rgb)
    losses_a = [e.loss for e in straight.run() if isinstance(e, StepEvent)]

    first = Trainer(tiny_config(tmp_path / "b.safetensors", **cfg), rgb)
    losses_b = []
    for e in first.run():
        if isinstance(e, StepEvent):
            losses_b.append(e.loss)
            if e.step == 3:
                first.request_stop()
    resumed = Trainer.resume(tmp_path / "b.safetensors", rgb)
    events = list(resumed.run())
    assert isinstance(events[0], StartEvent)
    assert events[0].step == 3
    losses_b += [e.loss for e in events if isinstance(e, StepEvent)]

    assert len(losses_a) == 6
    assert losses_b == losses_a
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.allclose(a, b), name


def test_stop_leaves_a_loadable_checkpoint(tmp_path, rgb):
    out = tmp_path / "stopped.safetensors"
    trainer = Trainer(tiny_config(out, max_steps=50, chroma_size=8), rgb)
    for e in trainer.run():
        if isinstance(e, StepEvent) and e.step == 2:
            trainer.request_stop()
        last = e
    assert isinstance(last, TrainResult)
    assert last.stopped
    assert last.step == 2
    assert last.path == str(out)
    model, meta = load_model(out)
    assert meta.arch == "beta"
    assert meta.extra["chroma_size"] == 8
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 5, 7)).shape == (1, 2, 5, 7)
    assert load_checkpoint(out).training_meta["step"] == 2


def test_a_failing_save_keeps_the_previous_checkpoint(tmp_path, rgb, monkeypatch):
    import safetensors.torch

    out = tmp_path / "run.safetensors"
    trainer = Trainer(tiny_config(out, max_steps=4, checkpoint_every=1), rgb)
    real_save = safetensors.torch.save_file
    calls = []

    def flaky_save(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            with open(filename, "wb") as f:
                f.write(b"half a file")
            raise OSError("disk full")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        for _ in trainer.run():
            pass
    assert load_checkpoint(out).training_meta["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]  # no temp file left


def test_plain_tensor_datasets_and_validation(rgb):
    l_net = torch.rand(6, 1, 8, 8) * 2 - 1
    ab = torch.rand(6, 2, 8, 8) - 0.5
    data = torch.utils.data.TensorDataset(l_net, ab)
    result = Trainer(tiny_config(max_steps=2, batch_size=3), data, data).fit()
    assert result.step == 2
    assert result.path is None
    assert "val_delta_e" in result.metrics


def test_bad_data_and_configs_are_explained(rgb):
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="perceptual-ish")
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="lbfgs")
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, 2, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        Trainer(tiny_config(), empty).fit()
    with pytest.raises(ValueError, match="training data must be"):
        Trainer(tiny_config(), 42).fit()
    mixed = [rgb[0], rgb[1, :6, :7]]
    with pytest.raises(ValueError, match="differ in size"):
        Trainer(tiny_config(batch_size=2), mixed).fit()
    Trainer(tiny_config(batch_size=2, max_steps=1, patch_size=6), mixed).fit()


def test_export_for_inference_in_half_precision(tmp_path, rgb):
    src = tmp_path / "run.safetensors"
    Trainer(tiny_config(src, max_steps=2), rgb).fit()
    dst = export_model(src, tmp_path / "small.safetensors", dtype=torch.float16,
                       metrics={"ciede2000": 1.0}, data="ten noise images")  # fmt: skip
    exported = load_checkpoint(dst)
    assert not exported.training_state
    assert exported.training_meta is None
    assert exported.model_state["head.0.weight"].dtype == torch.float16
    assert exported.meta.metrics == {"ciede2000": 1.0}
    model, _ = load_model(dst)
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(CheckpointError, match="no training state"):
        Trainer.resume(dst, rgb)


def test_fine_tuning_starts_from_given_weights(tmp_path, rgb):
    src = tmp_path / "run.safetensors"
    first = Trainer(tiny_config(src, max_steps=2), rgb)
    first.fit()
    tuned = Trainer(tiny_config(max_steps=1, lr=1e-9, model_config={}), rgb, init_checkpoint=src)
    tuned.fit()
    assert tuned.config.model_config["widths"] == [4, 8]  # taken from the checkpoint
    a = first.model.state_dict()["head.0.weight"]
    assert torch.allclose(a, tuned.model.state_dict()["head.0.weight"], atol=1e-6)


def test_export_command_halves_the_file(tmp_path, rgb, capsys):
    from napari_colorize.training.export import main as export_main

    src = tmp_path / "run.safetensors"
    Trainer(tiny_config(src, max_steps=1), rgb).fit()
    dst = tmp_path / "bundled.safetensors"
    assert export_main([str(src), str(dst), "--half", "--data", "noise"]) == 0
    assert '"metrics": {}' in capsys.readouterr().out
    assert load_checkpoint(dst).meta.data == "noise"
    assert dst.stat().st_size < src.stat().st_size


def test_export_records_bf16_change_beside_the_scores(tmp_path, rgb):
    from skimage.io import imsave

    from napari_colorize.training.export import export_and_evaluate

    src = tmp_path / "run.safetensors"
    Trainer(tiny_config(src, max_steps=1), rgb).fit()
    folder = tmp_path / "truth"
    folder.mkdir()
    for i, image in enumerate(rgb[:2]):
        imsave(folder / f"{i}.png", np.asarray(image, dtype=np.uint8), check_contrast=False)
    metrics = export_and_evaluate(src, tmp_path / "out.safetensors", evaluate_on=str(folder))
    assert metrics["bf16_change"] >= 0.0
    stored = load_checkpoint(tmp_path / "out.safetensors").meta.metrics
    assert stored["bf16_change"] == metrics["bf16_change"]
    assert stored["data"] == str(folder)


def test_batchnorm_recalibration_averages_batches_exactly(tmp_path, rgb):
    from napari_colorize.training.task import recalibrate_batchnorm

    bn = torch.nn.BatchNorm2d(1)
    batches = [torch.full((2, 1, 3, 3), 1.0), torch.full((2, 1, 3, 3), 3.0)]
    assert recalibrate_batchnorm(torch.nn.Sequential(bn).eval(), batches) == 2
    assert torch.allclose(bn.running_mean, torch.tensor([2.0]))
    assert bn.momentum == 0.1
    assert not bn.training
    assert recalibrate_batchnorm(torch.nn.Sequential(bn), []) == 0  # nothing to average: kept
    assert torch.allclose(bn.running_mean, torch.tensor([2.0]))

    out = tmp_path / "run.safetensors"
    events = list(Trainer(tiny_config(out, max_steps=2, bn_recalibrate=2), rgb, rgb[:2]).run())
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert [e.step for e in vals] == [2]  # validated once, after the recalibration
