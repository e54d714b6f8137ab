"""The Colorize widget's "Save result as OME-Zarr...": the result, its geometry and model."""

import numpy as np
import pytest
import zarr

pytest.importorskip("ome_zarr")


def _save(widget, qtbot, path):
    worker = widget.saver.save(str(path), start=False)
    assert worker is not None, widget.status.value
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()


def test_nothing_to_save_before_a_run(colorize_widget, tmp_path):
    viewer, widget = colorize_widget
    viewer.add_image(np.zeros((24, 24), np.uint8), name="punk")
    assert widget.saver.save(str(tmp_path / "out.ome.zarr")) is None
    assert "colorize the image first" in widget.status.value
    assert not (tmp_path / "out.ome.zarr").exists()


def test_a_result_is_saved_with_its_scale_and_model(
    colorize_widget, run_and_wait, qtbot, tmp_path
):
    viewer, widget = colorize_widget
    gray = np.linspace(0, 255, 3 * 24 * 32).reshape(3, 24, 32).astype(np.uint8)
    image = viewer.add_image(
        gray, name="stack", scale=(2.0, 0.5, 0.5), axis_labels=("z", "y", "x")
    )
    widget.image.value = image
    run_and_wait(widget)
    result = np.asarray(viewer.layers["stack colorized"].data)
    _save(widget, qtbot, tmp_path / "saved")  # the suffix is added
    target = tmp_path / "saved.ome.zarr"
    assert "saved" in widget.status.value
    assert target.is_dir()
    group = zarr.open_group(str(target), mode="r")
    attrs = dict(group.attrs)
    multiscale = (attrs.get("ome", attrs))["multiscales"][0]
    level0 = np.asarray(group[multiscale["datasets"][0]["path"]])
    names = [a["name"] for a in multiscale["axes"]]
    assert names == ["c", "z", "y", "x"]  # NGFF's order: the channel before space
    np.testing.assert_array_equal(np.moveaxis(level0, 0, -1), result)
    transforms = multiscale["datasets"][0]["coordinateTransformations"]
    scale = next(t["scale"] for t in transforms if t["type"] == "scale")
    assert scale == [1.0, 2.0, 0.5, 0.5]
    about = attrs["napari-colorize"]
    assert about["model"] == str(widget.model.value)
    assert about["source"] == "stack"


def test_an_existing_folder_is_one_line_and_kept(colorize_widget, run_and_wait, qtbot, tmp_path):
    viewer, widget = colorize_widget
    image = viewer.add_image(np.linspace(0, 255, 24 * 24).reshape(24, 24).astype(np.uint8))
    widget.image.value = image
    run_and_wait(widget)
    target = tmp_path / "out.ome.zarr"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    _save(widget, qtbot, target)
    assert widget.status.value.startswith("could not save:")
    assert "\n" not in widget.status.value
    assert (target / "keep.txt").read_text() == "mine"
    assert widget.saver.button.enabled
