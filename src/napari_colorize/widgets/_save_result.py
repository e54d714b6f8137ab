"""The Colorize widget's "Save result as OME-Zarr...": a result layer written to disk, lazily.

The writing itself is :func:`napari_colorize.ome_zarr.write_rgb_ome_zarr` (plane by
plane, a pyramid, the layer's axes, units, scale and translation, and what made it);
here it runs in a background thread with the outcome on the widget's status line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from magicgui.widgets import PushButton
from napari.qt.threading import thread_worker

from ._status_text import short_error

__all__ = ["ResultSaver"]

logger = logging.getLogger(__name__)

_FILTER = "OME-Zarr (*.ome.zarr *.zarr);;All files (*)"


def _ask_path(parent, suggestion: str) -> str | None:
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, "Save result as OME-Zarr", suggestion, _FILTER)
    return path or None


def _target(path: str) -> str:
    """``path`` with an OME-Zarr suffix (a dialog may drop it)."""
    return path if path.endswith((".ome.zarr", ".zarr")) else path + ".ome.zarr"


class _Failure:
    """An error handed back by the worker (superqt re-raises raised and returned exceptions)."""

    def __init__(self, error: BaseException):
        self.error = error


def _write(data, target, layer_info, about):
    """The written path, or a :class:`_Failure`."""
    from pathlib import Path

    from ..ome_zarr import write_rgb_ome_zarr

    if Path(target).exists():
        message = f"{target} exists; choose another name (nothing was replaced)"
        return _Failure(FileExistsError(message))
    try:
        return write_rgb_ome_zarr(data, target, about=about, **layer_info)
    except Exception as exc:
        logger.debug("saving the result failed", exc_info=True)
        return _Failure(exc)


class ResultSaver:
    """A button that writes a result layer to an OME-Zarr on disk, in a background thread.

    Parameters
    ----------
    status : magicgui Label
        Where the outcome is said (one line; the full error in the tooltip).
    parent : callable
        Gives the Qt widget the file dialog belongs to.
    result_layer : callable
        Gives ``(layer, about)``: the result layer to save (or None) and what made it.
    """

    def __init__(self, status, parent: Callable, result_layer: Callable):
        self.status = status
        self._parent = parent
        self._result_layer = result_layer
        self.worker = None
        self.button = PushButton(
            name="save_button", label="", text="Save result as OME-Zarr...",
            tooltip="Write the colorized layer to an OME-Zarr folder (a pyramid, the layer's "
            "axes, units, scale and translation, and the model that made it), plane by "
            "plane; napari opens it with napari-ome-zarr.",
        )  # fmt: skip
        self.button.changed.connect(lambda *_: self.save())

    def save(self, path: str | None = None, *, start: bool = True):
        """Ask where (unless ``path`` is given) and write the result; the worker, or None."""
        layer, about = self._result_layer()
        if layer is None:
            self.status.value = "nothing to save yet: colorize the image first"
            return None
        if self.worker is not None:
            self.status.value = "a result is being saved; wait until it is written"
            return None
        path = path or _ask_path(self._parent(), f"{layer.name}.ome.zarr")
        if not path:
            return None
        target = _target(str(path))
        layer_info = {
            "axes": list(layer.axis_labels),
            "units": [str(u) for u in layer.units],
            "scale": list(layer.scale),
            "translate": list(layer.translate),
        }
        worker = thread_worker(_write, start_thread=False)(layer.data, target, layer_info, about)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.button.enabled = False
        self.status.value = f"saving {layer.name} to {target}..."
        if start:
            worker.start()
        return worker

    def _on_returned(self, outcome) -> None:
        if isinstance(outcome, _Failure):
            self._on_error(outcome.error)
            return
        self.status.tooltip = None
        self.status.value = f"saved {outcome}"

    def _on_error(self, exc) -> None:
        logger.info("saving the result failed: %s", exc)
        self.status.value = f"could not save: {short_error(exc)}"
        self.status.tooltip = str(exc)

    def _on_finished(self) -> None:
        self.worker = None
        self.button.enabled = True
