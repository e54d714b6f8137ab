"""The Colorize widget's training-free methods and its choice of a method per image."""

import numpy as np
import pytest

from napari_colorize.color import lab_to_rgb, rgb_to_lab

PLUGIN = "napari-colorize"
RED_AB = (60.0, 40.0)
BLUE_AB = (10.0, -50.0)


@pytest.fixture
def fresh_widget(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """A docked Colorize widget that has chosen nothing yet, with an empty download cache."""
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=30_000)
    widget.device.value = "cpu"
    return viewer, widget


def _scene(flip=False, size=96):
    """RGB where colour follows texture: striped blocks red, smooth blocks blue."""
    rng = np.random.default_rng(int(flip))
    lightness = np.full((size, size), 55.0)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = (yy // 24 + xx // 24) % 2 == 0
    if flip:
        stripes = ~stripes
    wave = 12.0 * np.sign(np.sin(np.arange(size) * 1.3))[None].repeat(size, 0)
    lightness[stripes] += wave[stripes]
    lightness += rng.normal(0, 0.5, lightness.shape)
    ab = np.where(stripes[..., None], RED_AB, BLUE_AB)
    rgb = (lab_to_rgb(np.concatenate([lightness[..., None], ab], -1)) * 255).round()
    return rgb.astype(np.uint8), stripes


def test_the_model_follows_the_image_until_the_user_picks_one(fresh_widget):
    viewer, widget = fresh_widget
    names = [value for _label, value in widget._model_choices()]
    assert names[:2] == ["reference", "propagate"]
    assert names[-1] == "Browse checkpoint..."
    viewer.add_image(np.zeros((20, 20), np.uint8), name="punk")
    assert widget.model.value == "beta-punks"  # punks-sized
    widget.image.value = viewer.add_image(np.zeros((300, 400), np.uint8), name="photo")
    assert widget.model.value == "eccv16"  # offered for download, never the punks model
    assert "reference" in widget.status.value
    assert "propagate" in widget.status.value
    assert not widget.reference.enabled
    reference, _ = _scene()
    viewer.add_image(reference, name="colour", rgb=True)
    widget.image.value = viewer.layers["photo"]
    assert widget.model.value == "reference"
    assert widget.reference.value is viewer.layers["colour"]
    assert widget.reference.enabled
    widget.model.value = "propagate"  # the user's choice now stays
    widget.image.value = viewer.layers["punk"]
    assert widget.model.value == "propagate"


def test_colorizes_from_a_reference_layer(fresh_widget, run_and_wait):
    viewer, widget = fresh_widget
    reference, _ = _scene()
    target, stripes = _scene(flip=True)
    viewer.add_image(reference, name="colour", rgb=True)
    lightness = rgb_to_lab(target)[..., :1]
    gray = lab_to_rgb(np.concatenate([lightness, 0 * lightness, 0 * lightness], -1))[..., 0]
    image = viewer.add_image((gray * 255).round().astype(np.uint8), name="gray")
    widget.image.value = image
    widget.model.value = "reference"
    widget.reference.value = viewer.layers["colour"]
    run_and_wait(widget, timeout=120_000)
    out = rgb_to_lab(viewer.layers["gray colorized"].data)
    assert out[stripes][:, 1].mean() > 20.0  # red where the reference's texture was red
    assert out[~stripes][:, 2].mean() < -15.0  # blue where it was blue
    # the fit is kept for the next run with the same reference
    first = widget._reference_method(viewer.layers["colour"])
    run_and_wait(widget, timeout=120_000)
    assert widget._reference_method(viewer.layers["colour"]) is first


def test_reference_without_a_layer_says_what_to_do(fresh_widget, monkeypatch):
    from napari_colorize.widgets import colorize as colorize_module

    errors = []
    monkeypatch.setattr(colorize_module, "show_error", errors.append)
    viewer, widget = fresh_widget
    viewer.add_image(np.zeros((30, 30), np.uint8), name="gray")
    widget.model.value = "reference"
    assert "RGB layer" in widget.model_info.value
    assert widget.run() is None
    assert len(errors) == 1
    assert "choose a reference" in errors[0]


def test_propagates_point_hints(fresh_widget, run_and_wait):
    viewer, widget = fresh_widget
    gray = np.full((40, 60), 30.0)
    gray[:, 30:] = 70.0
    image = viewer.add_image(gray, name="gray", contrast_limits=(0, 100))
    colors = lab_to_rgb(np.array([[50.0, *RED_AB], [50.0, *BLUE_AB]]))
    points = viewer.add_points([[20, 5], [20, 55]], face_color=colors, size=1, name="hints")
    widget.live.value = False
    widget.image.value = image
    widget.model.value = "propagate"
    widget.hints.value = points
    run_and_wait(widget)
    ab = rgb_to_lab(viewer.layers["gray colorized"].data)[..., 1:]
    assert ab[:, :25, 0].mean() > 30.0
    assert ab[:, 35:, 1].mean() < -25.0


def test_the_done_status_says_which_precision_auto_chose(fresh_widget, run_and_wait, monkeypatch):
    """On a CPU with AMX (pretended here) the bundled model runs in bf16, by its record."""
    monkeypatch.setattr("napari_colorize.inference.colorizer.cpu_has_fast_bf16", lambda: True)
    monkeypatch.delenv("NAPARI_COLORIZE_PRECISION")
    viewer, widget = fresh_widget
    gray = np.random.default_rng(0).integers(0, 255, (24, 24)).astype(np.uint8)
    widget.image.value = viewer.add_image(gray, name="punk")
    widget.model.value = "beta-punks"
    run_and_wait(widget, timeout=60_000)
    assert widget.status.value == (
        "done: punk colorized; precision bf16: bf16 moves this model's colours by 0.041 "
        "CIEDE2000 on punks:test, within 0.1"
    )
