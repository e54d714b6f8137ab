"""The Class probabilities dock widget: what a classifier sees in the shown plane.

For the chosen image layer (the plane shown, for a stack) it draws the top
classes of a classifier as horizontal bars and redraws them when the plane, the
layer or its data change. The work is done by :mod:`napari_colorize.classify`
in a ``thread_worker``; at most one runs at a time, and a request made while it
runs replaces any older waiting one, so scrolling through a stack never queues
up stale results.

The classifiers offered are the registry's ``inception`` models: the bundled
``inception-punks`` (punk type as a softmax, then the most likely accessories,
each an independent sigmoid) and, once downloaded, the ImageNet weights
``inception-imagenet``; choosing one that is not on this machine explains how
to get it and offers the download. When the image is unlike the classifier's
training data, or the classifier is unsure, a warning above the bars says so
(:attr:`napari_colorize.classify.ClassScores.warning`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton, SpinBox
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QFontMetrics, QPainter
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..layers import plane_index
from ._download_message import download_failure_line
from ._model_picker import ModelPicker, classifier_entries, classifier_probe
from ._viewer import compact_combos, scroll_rows, wrapping_label

if TYPE_CHECKING:
    import napari

__all__ = ["ClassProbabilitiesWidget", "ProbabilityBars"]

logger = logging.getLogger(__name__)

#: The classifier chosen until the registry has been read.
DEFAULT_CLASSIFIER = "inception-punks"
#: The warning's look: bold, in an orange readable on napari's dark and light themes.
_WARNING_STYLE = "color: #e8891c; font-weight: bold;"
_COLORS = {"softmax": QColor(80, 160, 255), "sigmoid": QColor(255, 150, 40)}
_MUTED = QColor(150, 150, 150)


# ------------------------------------------------------------------ the bar chart


class ProbabilityBars(QWidget):
    """Horizontal bars, one per class: name, bar, percentage; a heading per head.

    Softmax heads are drawn in blue (their bars add up to 100%), sigmoid heads
    in orange (each label on its own); all in grey when ``muted`` (the image is
    unlike the classifier's training data).
    """

    ROW = 18

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list = []  # ClassRow
        self.message = ""
        self.muted = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._resize()

    def set_rows(self, rows, message: str = "", muted: bool = False) -> None:
        """Show ``rows`` (:class:`napari_colorize.classify.ClassRow`), or only ``message``.

        ``muted`` draws the bars in grey: probabilities not to be taken at their word.
        """
        self.rows = list(rows)
        self.message = message
        self.muted = bool(muted)
        self._resize()
        self.update()

    def _lines(self) -> list[tuple[str, Any]]:
        lines, head = [], None
        for row in self.rows:
            if row.head != head:
                head = row.head
                kind = "one of" if row.kind == "softmax" else "each on its own"
                lines.append(("head", f"{row.head} ({kind})"))
            lines.append(("row", row))
        return lines

    def _resize(self) -> None:
        n = len(self._lines()) if self.rows else 1
        self.setFixedHeight(self.ROW * n + 6)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            text = self.palette().windowText().color()
            width = self.width()
            if not self.rows:
                painter.setPen(text)
                painter.drawText(QRectF(4, 0, width - 8, self.ROW), Qt.AlignmentFlag.AlignVCenter,
                                 self.message)  # fmt: skip
                return
            metrics = QFontMetrics(painter.font())
            name_w = max(60.0, width * 0.42)
            pct_w = 46.0
            bar_x, bar_w = name_w + 6, max(10.0, width - name_w - pct_w - 14)
            y = 3.0
            for kind, item in self._lines():
                rect = QRectF(4, y, width - 8, self.ROW)
                painter.setPen(text)
                if kind == "head":
                    font = painter.font()
                    font.setBold(True)
                    painter.setFont(font)
                    painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter, item)
                    font.setBold(False)
                    painter.setFont(font)
                else:
                    name = metrics.elidedText(
                        item.label, Qt.TextElideMode.ElideRight, int(name_w - 8)
                    )
                    painter.drawText(
                        QRectF(12, y, name_w - 8, self.ROW), Qt.AlignmentFlag.AlignVCenter, name
                    )
                    p = min(max(item.probability, 0.0), 1.0)
                    track = QRectF(bar_x, y + 4, bar_w, self.ROW - 8)
                    painter.fillRect(track, QColor(128, 128, 128, 60))
                    painter.fillRect(
                        QRectF(track.x(), track.y(), track.width() * p, track.height()),
                        _MUTED if self.muted else _COLORS.get(item.kind, _COLORS["softmax"]),
                    )
                    painter.drawText(
                        QRectF(bar_x + bar_w + 4, y, pct_w, self.ROW),
                        Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                        f"{100 * p:.1f}%",
                    )
                y += self.ROW
        finally:
            painter.end()


# ------------------------------------------------------------------ worker functions


@dataclass
class _Request:
    """One classification, gathered on the main thread."""

    id: int
    model: str
    classifier: Any  # the loaded Classifier for ``model``, or None to load it
    data: Any
    ndim: int
    rgb: bool
    multiscale: bool
    plane: tuple | None
    value_range: tuple | None
    source: str


@dataclass
class _Answer:
    request: _Request
    classifier: Any = None
    scores: Any = None
    error: BaseException | None = None


def _classify(request: _Request) -> _Answer:
    """Worker: load the classifier if needed, read the plane, classify it."""
    try:
        from ..classify import Classifier, classify_plane

        clf = request.classifier or Classifier.load(request.model)
        scores = classify_plane(
            clf, request.data, ndim=request.ndim, rgb=request.rgb,
            multiscale=request.multiscale, plane=request.plane, value_range=request.value_range,
        )  # fmt: skip
        return _Answer(request, clf, scores)
    except Exception as exc:  # shown by the main thread
        logger.debug("classification failed", exc_info=True)
        return _Answer(request, error=exc)


@dataclass
class _Fetched:
    """What a download worker returns: ``error`` is None when the weights arrived."""

    error: BaseException | None = None


def _download(name: str):
    """Generator worker: fetch a classifier's weights, yielding ``DownloadProgress`` events.

    A failure is returned wrapped, never as the exception itself: a worker
    returning an exception re-raises it in the main thread.
    """
    from ..registry import fetch_weights

    try:
        yield from fetch_weights(name)
    except Exception as exc:  # shown by the main thread
        logger.debug("download of %s failed", name, exc_info=True)
        return _Fetched(exc)
    return _Fetched()


# ------------------------------------------------------------------ the widget


class ClassProbabilitiesWidget(Container):
    """Bar chart of a classifier's top classes for the plane shown of an image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    probe : bool
        List the registry's classifiers in a background thread now (otherwise
        only ``inception-punks`` until :meth:`refresh_choices`).
    """

    def __init__(self, viewer: napari.viewer.Viewer, probe: bool = True):
        super().__init__(labels=True)
        self._viewer = viewer
        self._loaded: dict[str, Any] = {}  # model name -> Classifier
        self._worker = None
        self._download_worker = None
        self._pending: _Request | None = None
        self._last_id = 0
        self._followed = None  # the layer whose data events are connected
        self._closed = False
        self.scores = None  # the ClassScores shown
        self.shown: tuple | None = None  # (layer name, plane) of the scores shown

        self.image = ComboBox(label="image", choices=self._image_choices, nullable=False)
        default = {"name": DEFAULT_CLASSIFIER, "available": True, "advice": "", "description": ""}
        self.picker = ModelPicker(
            classifier_probe, entries=classifier_entries([default]).entries,
            label="classifier", name="classifier", on_probed=self._on_probed,
        )  # fmt: skip
        self.picker.cards[DEFAULT_CLASSIFIER] = default
        self.classifier = self.picker.combo
        self.top_k = SpinBox(label="top k", value=5, min=1, max=50,
                             tooltip="classes shown per head")  # fmt: skip
        self.download_button = PushButton(text="Download weights", visible=False)
        self.progress = ProgressBar(value=0, min=0, max=100, visible=False)
        self.status = Label(value="")
        self.warning = Label(value="", visible=False)  # unnamed: no label column
        self.extend(
            [self.image, self.classifier, self.top_k, self.download_button, self.progress,
             self.status, self.warning]
        )  # fmt: skip
        wrapping_label(self.status)
        wrapping_label(self.warning)
        self.warning.native.setStyleSheet(_WARNING_STYLE)
        compact_combos(self.image, self.classifier)
        self.bars = ProbabilityBars()
        self.native.layout().addWidget(self.bars)
        scroll_rows(self)

        self.image.changed.connect(self._on_image_changed)
        self.classifier.changed.connect(self._on_classifier_changed)
        self.top_k.changed.connect(self._show_scores)
        self.download_button.changed.connect(self.download)
        viewer.dims.events.current_step.connect(self._on_step)
        viewer.layers.events.inserted.connect(self.reset_choices)
        viewer.layers.events.removed.connect(self.reset_choices)
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        if probe:
            self.refresh_choices()
        self._on_image_changed()

    # ------------------------------------------------------------ choices

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def refresh_choices(self, start: bool = True):
        """List the registry's classifiers again in a background thread; the worker."""
        return self.picker.refresh(start=start)

    def _on_probed(self, _probed) -> None:
        self._on_classifier_changed()

    def set_checkpoint(self, path) -> None:
        """Offer the classifier checkpoint file ``path`` and select it."""
        self.picker.set_checkpoint(path)

    def _entry(self, name) -> dict | None:
        """What :func:`.classify.available_classifiers` says of ``name`` (None: a file)."""
        return self.picker.cards.get(name)

    # ------------------------------------------------------------ events

    def _on_destroyed(self, *_args) -> None:
        """The dock or the viewer closed: stop listening, drop what is on its way."""
        self._closed = True
        self.picker.closed = True
        self._pending = None
        viewer = self._viewer
        for signal, slot in (
            (viewer.dims.events.current_step, self._on_step),
            (viewer.layers.events.inserted, self.reset_choices),
            (viewer.layers.events.removed, self.reset_choices),
        ):
            with contextlib.suppress(TypeError, RuntimeError, ValueError):
                signal.disconnect(slot)
        if self._followed is not None:
            with contextlib.suppress(TypeError, RuntimeError, ValueError):
                self._followed.events.data.disconnect(self._on_data)
            self._followed = None

    def _on_image_changed(self, _value=None) -> None:
        layer = self.image.value
        if self._followed is not None:
            self._followed.events.data.disconnect(self._on_data)
        self._followed = layer
        if layer is not None:
            layer.events.data.connect(self._on_data)
        self.refresh()

    def _on_data(self, _event=None) -> None:
        self.refresh()

    def _on_step(self, _event=None) -> None:
        layer = self.image.value
        if layer is not None and layer.ndim > 2:
            self.refresh()

    def _on_classifier_changed(self, _value=None) -> None:
        name = self.classifier.value
        entry = self._entry(name)
        unavailable = entry is not None and not entry["available"]
        self.download_button.visible = bool(unavailable and entry.get("source") == "url")
        if unavailable:
            self._last_id += 1  # drop whatever is on its way
            self._pending = None
            self.scores = None
            self._show_warning(None)
            self.bars.set_rows([], "no weights on this machine")
            self.status.value = entry.get("advice") or f"{name} is not available"
            return
        self.refresh()

    # ------------------------------------------------------------ classification

    def refresh(self) -> None:
        """Classify the shown plane of the chosen layer again (in a worker)."""
        if self._closed:
            return
        request = self._request()
        if request is None:
            return
        if self._worker is not None:
            self._pending = request  # replaces an older waiting one
            return
        self._start(request)

    def _request(self) -> _Request | None:
        layer, name = self.image.value, self.classifier.value
        if layer is None or name is None:
            self.scores = None
            self._show_warning(None)
            self.bars.set_rows([], "choose an image layer" if layer is None else "")
            return None
        entry = self._entry(name)
        if entry is not None and not entry["available"]:
            return None
        ndim = layer.ndim
        plane = None
        if ndim > 2:
            point = layer.world_to_data(self._viewer.dims.point)
            plane = plane_index(point, layer.level_shapes[0], ndim - 2)
        self._last_id += 1
        limits = tuple(float(v) for v in layer.contrast_limits)
        return _Request(
            id=self._last_id, model=name, classifier=self._loaded.get(name), data=layer.data,
            ndim=ndim, rgb=bool(layer.rgb), multiscale=bool(layer.multiscale), plane=plane,
            value_range=limits if limits[1] > limits[0] else None, source=layer.name,
        )  # fmt: skip

    def _start(self, request: _Request) -> None:
        if request.classifier is None:
            self.status.value = f"loading {request.model}..."
        worker = thread_worker(_classify, start_thread=False)(request)
        worker.returned.connect(self._on_answer)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def _on_answer(self, answer: _Answer) -> None:
        request = answer.request
        if self._closed:
            return
        if answer.classifier is not None:
            self._loaded[request.model] = answer.classifier
        if request.id != self._last_id:
            return  # a newer request was made meanwhile: this result is stale
        if answer.error is not None:
            self.scores = None
            self._show_warning(None)
            self.bars.set_rows([], "no result")
            self.status.value = f"could not classify {request.source}: {answer.error}"
            show_error(f"Class probabilities: {answer.error}")
            return
        self.scores = answer.scores
        self.shown = (request.source, request.plane)
        where = "" if request.plane is None else f", plane {list(request.plane)}"
        self.status.value = f"{request.model} on {request.source}{where}"
        self._show_scores()

    def _on_finished(self) -> None:
        self._worker = None
        pending, self._pending = self._pending, None
        if pending is not None and not self._closed:
            pending.classifier = self._loaded.get(pending.model)
            self._start(pending)

    def _show_scores(self, _value=None) -> None:
        if self.scores is None:
            self._show_warning(None)
            return
        k = int(self.top_k.value)
        warning = getattr(self.scores, "warning", None)
        self._show_warning(warning)
        self.bars.set_rows(self.scores.rows(k), muted=warning is not None)

    def _show_warning(self, text: str | None) -> None:
        """Show why the probabilities shown should not be trusted (hidden when nothing)."""
        self.warning.value = f"\u26a0 {text}" if text else ""
        self.warning.visible = bool(text)

    @property
    def busy(self) -> bool:
        """Whether a classification is running or waiting."""
        return self._worker is not None or self._pending is not None

    # ------------------------------------------------------------ downloads

    def download(self, _value=None, *, start: bool = True):
        """Fetch the weights of the chosen (URL) classifier in a worker; returns the worker.

        The worker is started unless ``start`` is False (so that a caller can
        connect to it first); None when a download is going on.
        """
        name = self.classifier.value
        if self._download_worker is not None or name is None:
            return None
        worker = thread_worker(_download, start_thread=False)(name)
        worker.yielded.connect(self._on_download_progress)
        worker.returned.connect(lambda fetched: self._on_downloaded(name, fetched.error))
        # anything the worker did not catch: reported here, not re-raised in napari
        worker.errored.connect(lambda error: self._on_downloaded(name, error))
        worker.finished.connect(lambda: setattr(self, "_download_worker", None))
        self._download_worker = worker
        self.download_button.enabled = False
        self.progress.visible = True
        self.progress.value = 0
        self.status.value = f"downloading {name}..."
        self.status.tooltip = None
        if start:
            worker.start()
        return worker

    def _on_download_progress(self, event) -> None:
        if event.total and not self._closed:
            self.progress.value = int(100 * event.done / event.total)
            self.status.value = event.message

    def _on_downloaded(self, name, error) -> None:
        if self._closed:
            return
        self.progress.visible = False
        self.download_button.enabled = True
        if error is not None:
            line = download_failure_line(name, error)
            self.status.value = line
            self.status.tooltip = str(error)  # the whole advice: URL, sha256, loading by path
            show_error(f"Class probabilities: {line}")
            return
        self.status.tooltip = None
        self.status.value = f"{name} downloaded"
        self.refresh_choices()
