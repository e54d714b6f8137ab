"""The Colorize widget, opened through the manifest, on small layers with a tiny model."""

import threading

import numpy as np
import pytest

from napari_colorize.widgets import colorize as colorize_module


@pytest.fixture
def errors(monkeypatch):
    """The messages the widget shows as error notifications."""
    messages = []
    monkeypatch.setattr(colorize_module, "show_error", messages.append)
    return messages


def test_colorizes_2d_layer_with_its_geometry_and_replaces_on_rerun(
    colorize_widget, run_and_wait, errors, monkeypatch, tiny_checkpoint
):
    viewer, widget = colorize_widget
    gray = np.linspace(0, 255, 24 * 20).reshape(24, 20).astype(np.uint8)
    source = viewer.add_image(gray, name="scan", scale=(2.0, 0.5), translate=(10, -3))
    widget.image.value = source
    widget.add_lab.value = True
    run_and_wait(widget)
    assert errors == []
    out = viewer.layers["scan colorized"]
    assert out.rgb
    assert out.data.shape == (24, 20, 3)
    assert out.data.dtype == np.uint8
    np.testing.assert_allclose(out.scale, (2.0, 0.5))
    np.testing.assert_allclose(out.translate, (10, -3))
    for channel, limits in (("L", (0, 100)), ("a", (-128, 127)), ("b", (-128, 127))):
        layer = viewer.layers[f"scan {channel}"]
        assert layer.data.shape == (24, 20)
        assert tuple(layer.contrast_limits) == limits
    # the output keeps the input's lightness
    lightness = viewer.layers["scan L"].data
    assert np.corrcoef(lightness.ravel(), gray.ravel().astype(float))[0, 1] > 0.99
    n_layers = len(viewer.layers)
    run_and_wait(widget)
    assert len(viewer.layers) == n_layers
    assert viewer.layers["scan colorized"] is out
    assert not widget.busy
    assert widget.run_button.enabled

    # "Browse checkpoint..." adds the chosen file; a cancelled dialog keeps the choice
    from qtpy.QtWidgets import QFileDialog

    chosen = str(tiny_checkpoint.with_name("other.safetensors"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (chosen, ""))
    widget.model.value = colorize_module.BROWSE
    assert widget.model.value == chosen
    assert widget.model.current_choice == "other.safetensors"  # the file name, not the path
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    widget.model.value = colorize_module.BROWSE  # dialog cancelled
    assert widget.model.value == chosen


def test_stack_all_planes_and_current_plane_preview(colorize_widget, run_and_wait, errors):
    viewer, widget = colorize_widget
    stack = np.random.default_rng(0).integers(0, 255, (3, 16, 16), dtype=np.uint8)
    viewer.add_image(stack, name="stack", scale=(5, 1, 1))
    viewer.dims.set_current_step(0, 2)
    widget.stack.value = colorize_module.CURRENT_PLANE
    run_and_wait(widget)
    out = viewer.layers["stack colorized"]
    assert out.data.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(out.translate, (10, 0, 0))
    widget.stack.value = colorize_module.ALL_PLANES
    run_and_wait(widget)
    out = viewer.layers["stack colorized"]
    assert out.data.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(out.translate, (0, 0, 0))
    np.testing.assert_allclose(out.scale, (5, 1, 1))
    assert [layer.name for layer in viewer.layers].count("stack colorized") == 1
    assert errors == []


def test_dask_stack_preview_reads_only_the_plane_shown(colorize_widget, run_and_wait, errors):
    da = pytest.importorskip("dask.array")
    viewer, widget = colorize_widget
    reads = []

    def plane(block, block_info=None):
        reads.append(block_info[None]["chunk-location"][0])
        return np.full(block.shape, 40 * (1 + block_info[None]["chunk-location"][0]), np.uint8)

    lazy = da.zeros((5, 16, 16), chunks=(1, 16, 16), dtype=np.uint8).map_blocks(
        plane, dtype=np.uint8
    )
    layer = viewer.add_image(lazy, name="lazy", contrast_limits=(0, 255))
    viewer.dims.set_current_step(0, 3)
    widget.image.value = layer
    widget.stack.value = colorize_module.CURRENT_PLANE
    reads.clear()
    run_and_wait(widget)
    assert errors == []
    assert set(reads) == {3}
    out = viewer.layers["lazy colorized"].data
    assert out.shape == (1, 16, 16, 3)
    # an RGB layer works too, keeping its lightness
    rgb = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    run_and_wait(widget, viewer.add_image(rgb, name="rgb", rgb=True))
    assert viewer.layers["rgb colorized"].data.shape == (16, 16, 3)


def test_multiscale_and_dask_layers(colorize_widget, run_and_wait, errors):
    da = pytest.importorskip("dask.array")
    viewer, widget = colorize_widget
    base = np.random.default_rng(1).integers(0, 255, (32, 32), dtype=np.uint8)
    pyramid = [da.from_array(base, chunks=16), da.from_array(base[::2, ::2], chunks=16)]
    layer = viewer.add_image(pyramid, multiscale=True, name="pyramid", contrast_limits=(0, 255))
    widget.image.value = layer
    widget.full_resolution.value = True
    run_and_wait(widget)
    assert errors == []
    assert viewer.layers["pyramid colorized"].data.shape == (32, 32, 3)
    np.testing.assert_allclose(viewer.layers["pyramid colorized"].scale, (1, 1))
    # the coarse level covers the same area with pixels twice as large
    widget.full_resolution.value = False
    job = widget._make_job(layer)
    job_level = 1 if layer.data_level == 1 else 0
    assert job.array.shape == pyramid[job_level].shape
    np.testing.assert_allclose(job.outputs["colorized"]["scale"], (2**job_level,) * 2)


def test_cancel_mid_run_leaves_no_output(colorize_widget, qtbot, monkeypatch, errors):
    viewer, widget = colorize_widget
    viewer.add_image(np.zeros((4, 16, 16), dtype=np.uint8), name="stack")
    gate = threading.Event()
    original = colorize_module._run_job

    def gated(job):  # hold the worker after its first event until the test has cancelled
        events = original(job)
        yield next(events)
        gate.wait(10)
        return (yield from events)

    monkeypatch.setattr(colorize_module, "_run_job", gated)
    worker = widget.run(start=False)
    assert widget.busy
    assert widget.cancel_button.enabled
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        widget.cancel()
        gate.set()
    assert "stack colorized" not in [layer.name for layer in viewer.layers]
    assert widget.status.value == "cancelled"
    assert not widget.busy
    assert widget.run_button.enabled
    assert not widget.cancel_button.enabled
    assert errors == []

    # closing the viewer mid-run stops the run; nothing touches the closed viewer
    gate.clear()
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        viewer.close()
        qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
        gate.set()


def test_bad_layers_notify_and_leave_the_widget_usable(colorize_widget, run_and_wait, errors):
    viewer, widget = colorize_widget
    labels = viewer.add_labels(np.zeros((8, 8), dtype=np.uint8), name="labels")
    assert labels not in widget.image.choices
    assert widget.run(labels) is None
    assert "Labels layer" in errors[-1]
    tiny = viewer.add_image(np.zeros((1, 1)), name="pixel")
    assert widget.run(tiny) is None
    assert "at least 4 x 4 pixels" in errors[-1]
    nan = viewer.add_image(np.full((8, 8), np.nan, dtype=np.float32), name="nan")
    run_and_wait(widget, nan)
    assert "NaN" in errors[-1]
    assert "nan colorized" not in [layer.name for layer in viewer.layers]
    # still usable
    ok = viewer.add_image(np.zeros((8, 8), dtype=np.uint8), name="ok")
    run_and_wait(widget, ok)
    assert "ok colorized" in [layer.name for layer in viewer.layers]
    assert len(errors) == 3
