"""``plan_run``: one training run from plain choices, shared by the CLI and the widget."""

import numpy as np
import pytest

from napari_colorize.training import presets, run
from napari_colorize.training.run import parse_start, plan_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Data:
    """What the widget passes: train and validation data, a preview image, a description."""

    def __init__(self, train, val=None):
        self.train, self.val = train, val
        self.preview_l = np.zeros((1, 1, 8, 8), np.float32)
        self.description = "two layers"


def _arrays(n=1):
    from napari_colorize.data import ArrayDataset

    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    return ArrayDataset(rgb, patch_size=8, samples_per_epoch=4 * n)


def test_start_choices_are_parsed_and_checked():
    assert parse_start("arch:alpha") == ("alpha", None)
    assert parse_start("model:beta-punks") == (None, "beta-punks")
    assert parse_start("file:/a/b.safetensors") == (None, "/a/b.safetensors")
    with pytest.raises(ValueError, match="choose an architecture or a model to fine-tune"):
        plan_run(start="alpha")
    with pytest.raises(ValueError, match="the learning rate must be a number, got 'fast'"):
        plan_run(start="arch:alpha", lr="fast")
    with pytest.raises(ValueError, match="the model config is not valid JSON"):
        plan_run(start="arch:alpha", model_config="{width: 2}")
    with pytest.raises(ValueError, match="must be a JSON object"):
        plan_run(start="arch:alpha", model_config="[2]")


def test_a_new_model_on_own_images_starts_from_the_lightness_table(tmp_path):
    out = tmp_path / "mine.safetensors"
    plan = plan_run(
        start="arch:alpha", model_config='{"width": 2}', steps=3, lr="3e-3",
        preview_every=10, out=out, own_images=True,
    )  # fmt: skip
    config = plan.config
    assert (config.arch, config.max_steps, config.epochs, config.lr) == ("alpha", 3, None, 3e-3)
    assert config.model_config == {"width": 2, "lightness_table": True}
    assert config.checkpoint_every == 50  # at least 50 steps, else 5 previews
    assert config.out == str(out)
    session = plan.session(_Data(_arrays(), _arrays()), model_name="mine")
    assert config.val_every == 10  # validated at each preview when there is validation data
    assert config.data == "two layers"
    assert session.preview_every == 10
    assert session.preview_l is not None

    tuned = plan_run(start="model:beta-punks", model_config='{"width": 2}', own_images=True)
    assert tuned.init_checkpoint == "beta-punks"
    assert tuned.config.model_config == {}  # the fine-tuned model's own


def test_a_preset_run_resumes_from_its_checkpoint(tmp_path, tiny_png):
    out = tmp_path / "alpha.safetensors"
    plan = plan_run("alpha", image=str(tiny_png), steps=2, batch_size=2, out=out)
    assert plan.config.out == str(out)
    assert plan.trainer().fit().step == 2

    again = plan_run("alpha", image=str(tiny_png), resume=out, steps=3)
    assert again.config.out == str(out)  # the saved run's output
    assert again.config.batch_size == 2  # the saved run's settings
    result = again.trainer().fit()
    assert (result.step, result.trained) == (3, 1)

    default = plan_run("alpha", image=str(tiny_png), steps=1)
    assert default.config.out == "runs/alpha.safetensors"

    from napari_colorize.training.trainer import export_model

    exported = export_model(out, tmp_path / "exported.safetensors")
    with pytest.raises(ValueError, match="holds no training state to resume from"):
        plan_run("alpha", image=str(tiny_png), resume=exported)


def test_an_interactive_run_resumes_with_its_new_length(tmp_path):
    out = tmp_path / "mine.safetensors"
    first = plan_run(start="arch:alpha", model_config='{"width": 2}', steps=2, out=out,
                     batch_size=2)  # fmt: skip
    assert first.trainer(_Data(_arrays())).fit().step == 2
    resumed = plan_run(start="arch:beta", steps=3, out=out, resume=True, batch_size=4)
    assert resumed.resume == str(out)
    trainer = resumed.trainer(_Data(_arrays()))
    assert trainer.config.arch == "alpha"  # the saved run's architecture and batch size
    assert trainer.config.batch_size == 2
    assert trainer.fit().step == 3


def test_the_train_command_builds_its_run_with_plan_run(monkeypatch, tiny_png, tmp_path):
    from napari_colorize.cli import main

    calls = []
    real = run.plan_run

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "plan_run", spy)
    out = tmp_path / "a.safetensors"
    argv = ["train", "--preset", "alpha", "--image", str(tiny_png), "--steps", "1"]
    assert main([*argv, "--out", str(out), "--batch-size", "2"]) == 0
    ((args, kwargs),) = calls
    assert args == ("alpha",)
    assert (kwargs["steps"], kwargs["out"], kwargs["batch_size"]) == (1, str(out), 2)


def test_every_preset_is_a_plain_function_of_the_presets_module():
    assert not hasattr(presets, "_lazy")
    for preset in presets.PRESETS.values():
        for part in (preset.config, preset.data):
            assert part.__module__ == presets.__name__
            assert "<locals>" not in part.__qualname__, preset.name
        assert preset.config().out.endswith(f"{preset.name}.safetensors")
