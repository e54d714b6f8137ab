"""The training presets and the ``napari-colorize train`` command."""

import pytest

from napari_colorize.cli import main
from napari_colorize.training.presets import get_preset, list_presets, preset_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_presets_are_listed():
    names = [p["name"] for p in list_presets()]
    assert names[:3] == ["alpha", "beta-original", "beta-punks"]
    with pytest.raises(ValueError, match="unknown preset 'gamma'; choose one of alpha"):
        get_preset("gamma")


def test_the_original_recipe_is_kept():
    from napari_colorize.models.beta import beta_original_config

    config = get_preset("beta-original").config()
    assert config.model_config == beta_original_config().to_dict()
    assert (config.loss, config.optimizer, config.scheduler) == ("mse", "rmsprop", "constant")
    ours = get_preset("beta-punks").config()
    assert ours.seed == config.seed
    assert ours.epochs is not None  # defined by epochs, not by wall time


def test_alpha_preset_fits_the_given_image(tiny_png):
    config, train, val = preset_run("alpha", image=str(tiny_png), max_steps=3)
    assert config.max_steps == 3
    assert config.epochs is None
    assert config.patch_size == 16  # the 64 default shrunk to the image, a multiple of 8
    l_net, ab = train[0]
    assert l_net.shape == (1, 16, 16)
    assert ab.shape == (2, 16, 16)
    assert val[0][0].shape == (1, 24, 20)  # validated on the whole image
    assert "tiny.png" in config.data


def test_alpha_preset_takes_a_sample_name_or_says_what_it_takes():
    config, train, _val = preset_run("alpha", image="coffee", max_steps=1)
    assert train[0][0].shape == (1, 64, 64)
    assert config.data == "one image: skimage.data.coffee() (400x600)"
    with pytest.raises(FileNotFoundError, match=r"no image file 'nowhere\.png'.*astronaut"):
        preset_run("alpha", image="nowhere.png")


def test_train_cli_alpha_on_a_tiny_image(tmp_path, tiny_png, capsys):
    out = tmp_path / "alpha.safetensors"
    argv = ["train", "--preset", "alpha", "--image", str(tiny_png), "--steps", "2"]
    assert main([*argv, "--out", str(out), "--batch-size", "2"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("alpha done: 2/2 steps in ")
    assert "val_delta_e=" in summary
    assert "val_table_delta_e=" in summary  # the lookup table's error, next to the model's
    assert str(out) in summary

    from napari_colorize.registry import load_model

    _model, meta = load_model(out)
    assert meta.arch == "alpha"
    assert meta.config["lightness_table"] is True
    assert "val_table_delta_e" in meta.metrics
    assert meta.extra["chroma_size"] == 24

    # resuming a finished run with more steps continues from step 2
    assert main(["train", "--preset", "alpha", "--image", str(tiny_png), "--resume", str(out),
                 "--steps", "3"]) == 0  # fmt: skip
    assert "alpha done: 3/3 steps" in capsys.readouterr().out


def test_train_cli_lists_presets_and_explains_mistakes(capsys):
    assert main(["train", "--list"]) == 0
    assert "beta-punks" in capsys.readouterr().out
    assert main(["train"]) == 2
    assert "give --preset NAME" in capsys.readouterr().err
    assert main(["train", "--preset", "gamma"]) == 2
    assert "unknown preset 'gamma'" in capsys.readouterr().err


def test_train_cli_speed_flags(tmp_path, tiny_png, capsys, monkeypatch):
    from napari_colorize.checkpoint import load_checkpoint
    from napari_colorize.training import speed

    monkeypatch.setattr(speed, "COMPILE_BACKEND", "aot_eager")  # no C++ compile: seconds
    out = tmp_path / "fast.safetensors"
    argv = ["train", "--preset", "alpha", "--image", str(tiny_png), "--steps", "2"]
    assert main([*argv, "--out", str(out), "--precision", "bf16", "--compile"]) == 0
    saved = load_checkpoint(out).training_meta["train_config"]
    assert saved["amp"] == "bf16"
    assert saved["compile"] is True
    assert not any("_orig_mod" in k for k in load_checkpoint(out).model_state)
    # a resumed run can turn compile off again
    assert main([*argv[:-1], "3", "--resume", str(out), "--no-compile"]) == 0
    assert load_checkpoint(out).training_meta["train_config"]["compile"] is False
    capsys.readouterr()

    monkeypatch.setattr(speed, "COMPILE_BACKEND", "inductor")
    monkeypatch.setattr(speed, "_cpp_compiler", lambda: None)
    assert (
        main([*argv, "--out", str(tmp_path / "x.safetensors"), "--compile", "--device", "cpu"])
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # after the progress bar: one line
    assert last.startswith("napari-colorize: error: torch.compile needs a C++ compiler")
    assert "without --compile" in last
