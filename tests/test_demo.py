"""The library side of the demo: sample, model choice, pictures and files, without Qt."""

import numpy as np
import pytest

from napari_colorize import demo
from napari_colorize.errors import ColorizeError


def test_montage_and_side_by_side_shapes():
    stack = np.arange(5 * 4 * 6, dtype=np.uint8).reshape(5, 4, 6)
    tiled = demo.montage(stack, columns=3, gap=1)
    assert tiled.shape == (2 * 4 + 1, 3 * 6 + 2)
    np.testing.assert_array_equal(tiled[:4, 7:13], stack[1])
    assert (tiled[5:, 14:] == 255).all()  # the empty sixth place
    colorized = np.zeros((5, 4, 6, 3), dtype=np.uint8)
    picture = demo.side_by_side(stack, colorized, colorized, columns=5, zoom=2, gap=3)
    width = 5 * 6 + 4  # five planes and four 1-pixel gaps per panel
    assert picture.shape == (2 * 4, 3 * 2 * width + 2 * 3, 3)
    assert picture.dtype == np.uint8
    single = demo.side_by_side(stack[0], colorized[0])
    assert single.shape[0] >= 256  # small images are enlarged to be seen


def test_pick_model_prefers_the_asked_one_and_says_when_it_falls_back(monkeypatch, tmp_path):
    from napari_colorize import registry

    rows = [
        {"name": "classifier", "arch": "inception", "available": True},
        {"name": "mine", "arch": "beta", "available": True},
        {"name": "beta-punks", "arch": "beta", "available": False},
    ]
    monkeypatch.setattr(registry, "list_models", lambda: rows)
    name, note = demo.pick_model("beta-punks")
    assert name == "mine"
    assert "'beta-punks' is not installed" in note
    assert demo.pick_model("mine") == ("mine", None)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    assert demo.pick_model(str(path)) == (str(path), None)
    monkeypatch.setattr(registry, "list_models", lambda: rows[::2])
    with pytest.raises(ColorizeError, match="no colorization model is installed"):
        demo.pick_model("beta-punks")


def test_display_problem_without_display(monkeypatch):
    monkeypatch.setattr(demo.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "no display" in demo.display_problem()


@pytest.fixture
def small_sample(monkeypatch):
    rgb = np.random.default_rng(0).integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    from napari_colorize.sample_data import rgb_to_gray

    sample = demo.DemoSample("punks", rgb_to_gray(rgb), rgb)
    monkeypatch.setattr(demo, "load_demo_sample", lambda n=64: sample)
    return sample


@pytest.fixture
def tiny_model(tmp_path):
    torch = pytest.importorskip("torch")
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.registry import build_model

    torch.manual_seed(0)
    model = build_model("alpha", {"width": 2})
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model.state_dict(), arch="alpha", config={"width": 2})
    return path


def test_headless_demo_writes_the_sample_and_a_side_by_side_png(
    small_sample, tiny_model, tmp_path, capsys
):
    import imageio.v3 as iio
    import tifffile

    from napari_colorize.cli import main

    out = tmp_path / "out"
    assert main(["demo", "--no-viewer", "--out", str(out), "--model", str(tiny_model)]) == 0
    printed = capsys.readouterr().out
    assert "--no-viewer was given" in printed
    assert "side_by_side.png" in printed
    colorized = tifffile.imread(out / "punks_colorized.tif")
    assert colorized.shape == (3, 12, 12, 3)
    np.testing.assert_array_equal(tifffile.imread(out / "punks_gray.tif"), small_sample.gray)
    picture = iio.imread(out / "side_by_side.png")
    assert picture.ndim == 3
    assert picture.shape[2] == 3
    assert picture.shape[1] > 3 * picture.shape[0]  # three panels of a 3-punk row
