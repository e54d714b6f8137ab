"""Fixtures of the widget tests: a tiny untrained model, the docked widgets."""

import pytest

PLUGIN = "napari-colorize"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained, very small alpha model saved as a checkpoint (fast on any CPU)."""
    torch = pytest.importorskip("torch")
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.registry import build_model

    torch.manual_seed(0)
    config = {"width": 2}
    model = build_model("alpha", config)
    path = tmp_path_factory.mktemp("models") / "tiny-alpha.safetensors"
    save_checkpoint(
        path, model.state_dict(), arch="alpha", config=config, extra={"chroma_size": 32}
    )
    return path


@pytest.fixture
def colorize_widget(make_napari_viewer, tiny_checkpoint, qtbot):
    """A viewer with the Colorize widget docked through the manifest, set to the tiny model."""
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    # the background listing of devices and models
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=30_000)
    widget.set_checkpoint(tiny_checkpoint)
    widget.device.value = "cpu"
    return viewer, widget


@pytest.fixture
def run_and_wait(qtbot):
    """Start a colorization and wait until its worker has finished; returns the worker."""

    def run(widget, layer=None, timeout=30_000):
        worker = widget.run(layer, start=False)
        assert worker is not None, widget.status.value
        with qtbot.waitSignal(worker.finished, timeout=timeout):
            worker.start()
        return worker

    return run
