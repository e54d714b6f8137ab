"""The viewer side of ``napari-colorize demo``: napari with a sample, colorized by the widget.

The sample and model come from :mod:`napari_colorize.demo`; the colorization is
the Colorize widget's own run, docked through the plugin manifest, so the demo
shows exactly what a user gets from *Plugins > napari-colorize > Colorize*.
"""

from __future__ import annotations

from collections.abc import Callable

from ..demo import DEMO_MODEL, load_demo_sample, pick_model

__all__ = ["run_viewer_demo"]

PLUGIN = "napari-colorize"
#: Which punk of the demo stack is shown first: a colourful one.
_FIRST_PLANE = 1
#: Window size, so that the three panels are large next to the docked widget.
_WINDOW_SIZE = (1280, 720)
#: Milliseconds to let napari draw the final view before a screenshot.
_SETTLE_MS = 500


def _arrange(viewer, gray, colorized, truth) -> None:
    """Show gray | colorized | truth side by side in napari's grid mode."""
    # napari's grid shows the first layer of the list top-left
    order = [layer for layer in (gray, colorized, truth) if layer is not None]
    for target, layer in enumerate(order):
        viewer.layers.move(viewer.layers.index(layer), target)
    for layer in order:
        layer.visible = True
    viewer.grid.enabled = True
    viewer.grid.shape = (1, len(order))
    if gray.ndim > 2:
        viewer.dims.set_current_step(0, min(_FIRST_PLANE, gray.data.shape[0] - 1))
    viewer.reset_view()


def run_viewer_demo(
    *,
    model: str = DEMO_MODEL,
    device: str = "auto",
    screenshot=None,
    log: Callable[[str], None] = print,
) -> int:
    """Open napari with the demo sample, dock the Colorize widget and colorize the sample.

    Parameters
    ----------
    model : str
        Model name or checkpoint path (another installed model is used, and
        said so, when it is missing).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda:0"``...
    screenshot : path-like, optional
        Save a screenshot of the whole window once the colorization has
        finished, then close napari.
    log : callable
        Receives one line per step.

    Returns
    -------
    int
        0 when the sample was colorized, 1 otherwise.
    """
    import napari
    from napari.utils.notifications import show_info
    from qtpy.QtCore import QTimer

    model, note = pick_model(model)
    sample = load_demo_sample()
    viewer = napari.Viewer(title="napari-colorize demo")
    viewer.window.resize(*_WINDOW_SIZE)
    gray = viewer.add_image(sample.gray, name=sample.name)
    truth = None
    if sample.truth is not None:
        truth = viewer.add_image(sample.truth, name=f"{sample.name} truth", rgb=True)
        truth.visible = False
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    widget.refresh_choices(block=True)
    widget.image.value = gray
    widget.set_model(model)
    if device != "auto":
        devices = list(widget.device.choices)
        if device not in devices:
            raise ValueError(f"device {device!r} is not available here; choose one of {devices}")
        widget.device.value = device
    for line in (note, sample.note):
        if line:
            log(line)
            show_info(line)
    log(f"colorizing {sample.name} {sample.gray.shape} with {model!r} in napari")

    status = {"code": 1}

    def finish() -> None:
        if screenshot is not None:
            path = viewer.screenshot(path=str(screenshot), canvas_only=False, flash=False)
            log(f"wrote {screenshot} {getattr(path, 'shape', '')}")
            viewer.close()

    def on_finished() -> None:
        name = f"{sample.name} colorized"
        if name in viewer.layers:
            status["code"] = 0
            _arrange(viewer, gray, viewer.layers[name], truth)
            log(widget.status.value)
        else:
            log(f"the colorization did not finish: {widget.status.value}")
        if screenshot is not None:
            QTimer.singleShot(_SETTLE_MS, finish)

    worker = widget.run(start=False)
    if worker is None:
        log(f"could not start: {widget.status.value}")
        if screenshot is not None:
            QTimer.singleShot(_SETTLE_MS, finish)
    else:
        worker.finished.connect(on_finished)
        worker.start()
    napari.run()
    return status["code"]
