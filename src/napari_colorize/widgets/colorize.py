"""The Colorize dock widget: pick a layer and a model, press Colorize.

The widget only collects choices and wires callbacks: what to colorize and
where the result goes is decided by :mod:`napari_colorize.layers`, the work is
done by :class:`napari_colorize.inference.Colorizer` in a ``thread_worker``
over its event generator, and layers are touched only in the main-thread
handlers of that worker. torch is first imported in a background thread (to
list the devices and models) or when a run starts, never while napari starts.

The model and device lists, the model cards (a line under the list, each
entry's tooltip), "Browse checkpoint..." and the probe of this machine are a
:class:`._model_picker.ModelPicker`.

Colour hints, for every method: a Points layer (each point's face colour
over a disc of its size, :mod:`napari_colorize.hints`), a Shapes layer
(strokes in their edge colour and width, filled shapes in their face colour)
or a Labels layer (each label's colour; :mod:`napari_colorize.scribbles`),
read by :mod:`._hint_layers`. In live mode every edit of the hints
re-colorizes the current plane (:class:`._live_hints.LiveHints`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from napari.layers import Image, Points
from napari.qt.threading import thread_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info

from ..layers import (
    LAB_CHANNELS,
    METADATA_KEY,
    choose_level,
    output_layer_kwargs,
    plane_index,
    select_source,
)
from ._colorize_job import ColorizeJob as _Job
from ._colorize_job import JobResult as _Result
from ._colorize_job import discard_job_store, discard_result
from ._colorize_job import run_job as _run_job
from ._hint_layers import HINT_LAYER_TYPES, layer_hints
from ._hint_points import NextPointColor, fit_point_size
from ._lifetime import on_removed
from ._live_hints import LiveHints
from ._model_picker import ModelPicker, colorizer_probe
from ._result_layers import show_result
from ._save_result import ResultSaver
from ._status_text import progress_text, short_error
from ._viewer import (
    compact_combos,
    layer_geometry,
    scroll_rows,
    wrapping_label,
)

if TYPE_CHECKING:
    import napari

__all__ = ["ColorizeWidget"]

logger = logging.getLogger(__name__)

#: The model chosen until the registry has been read.
DEFAULT_MODEL = "beta-punks"
#: The model-menu entry that opens a file dialog.
BROWSE = "Browse checkpoint..."
#: The training-free methods, first in the model menu: (label, name).
METHODS = [
    ("reference (colour layer)", "reference"),
    ("propagate (hints)", "propagate"),
]
ALL_PLANES = "all planes"
CURRENT_PLANE = "current plane (preview)"
TEMPORAL_TIP = (
    "Colour a time-lapse or z-stack consistently: planes are coloured one after another, "
    "hints on any plane follow the motion to the other planes, and colours are blended "
    "with the previous plane's where the motion is reliable (cuts are detected). Leave it "
    "off for a stack of unrelated images."
)
#: Working sizes offered: the model's own default, fixed sizes, or full resolution (0).
WORKING_SIZES = [
    ("model default", "auto"),
    *((f"{n} px", n) for n in (128, 256, 512, 1024, 2048)),
    ("full resolution", 0),
]


class ColorizeWidget(Container):
    """Colorize an Image layer with a model of the registry or a checkpoint file.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are offered and to which the results are added.
    probe : bool
        List the devices and models in a background thread right away
        (otherwise only ``auto`` and the default model are offered until
        :meth:`refresh_choices` is called).
    """

    def __init__(self, viewer: napari.viewer.Viewer, probe: bool = True):
        super().__init__(labels=True)
        self._viewer = viewer
        self._worker = None
        self._job: _Job | None = None
        self._progress = None
        self._takes_hints = False
        self._auto_model = True  # the model follows the image until the user picks one
        self._setting_model = False
        self._reference_methods: dict = {}  # (layer id, data id) -> fitted ReferenceColorizer
        self.live_hints = LiveHints(self)
        #: Live runs started, applied to the output and dropped as stale (for tests, benchmarks).
        self.live_counts = self.live_hints.counts

        self.image = ComboBox(
            name="image", label="image", choices=self._image_choices, nullable=False
        )
        self.picker = ModelPicker(
            functools.partial(colorizer_probe, METHODS),
            entries=[*METHODS, (DEFAULT_MODEL, DEFAULT_MODEL)], browse=BROWSE,
            devices=[("auto", "auto")], info=True, on_change=self._on_model_changed,
            on_probed=lambda _probed: self._update_hint_support(),
        )  # fmt: skip
        self.model, self.device = self.picker.combo, self.picker.device
        self.model_info = self.picker.info  # unnamed: the model's card in one line
        self.reference = ComboBox(
            name="reference", label="reference", choices=self._reference_choices,
            nullable=True, value=None,
            tooltip="An RGB layer of the same kind of scene or tissue: its colours are "
            "learned in seconds and given to the image (model 'reference').",
        )  # fmt: skip
        self.chroma_size = ComboBox(
            name="chroma_size",
            label="working size",
            choices=WORKING_SIZES,
            value="auto",
            tooltip="Longest side (pixels) at which colours are predicted and then "
            "upsampled onto the full-resolution lightness. Smaller is faster and smoother.",
        )
        self.stack = ComboBox(
            label="stack",
            choices=[ALL_PLANES, CURRENT_PLANE],
            value=ALL_PLANES,
            tooltip="Colorize every plane of a stack, or only the one shown (a quick preview).",
        )
        self.temporal = CheckBox(
            text="consistent across planes",
            value=False,
            tooltip=TEMPORAL_TIP,
        )
        self.full_resolution = CheckBox(
            text="full resolution (multiscale)",
            value=False,
            tooltip="For a multiscale layer: colorize level 0 instead of the level shown.",
        )
        self.add_lab = CheckBox(text="add L, a, b layers", value=False)
        self.hints = ComboBox(
            name="hints", label="hints", choices=self._hint_choices, nullable=True,
            value=None,
            tooltip="Colour hints: a Points layer (each point's face colour over a disc of "
            "its size), a Shapes layer (paths and lines in their edge colour and width, "
            "filled shapes in their face colour) or a Labels layer (each label's colour). "
            "'propagate' spreads them along lightness edges; other models read them or "
            "are corrected by them.",
        )  # fmt: skip
        self.live = CheckBox(
            text="live: re-colorize the plane on hint edits", value=True,
            tooltip="Re-colorize the current plane whenever a hint is added, moved, painted "
            "or recoloured (the whole stack, from the hints, with 'consistent across planes').",
        )  # fmt: skip
        self.next_color = NextPointColor(lambda: self.native)
        self.hints_info = Label(value="")
        self.run_button = PushButton(name="run_button", label="", text="Colorize")
        self.cancel_button = PushButton(
            name="cancel_button", label="", text="Cancel", enabled=False
        )
        self.status = Label(value="")  # unnamed, so the form shows no label for it
        self.saver = ResultSaver(self.status, lambda: self.native, self._result_to_save)
        self.extend(
            [
                self.image,
                self.model,
                self.model_info,
                self.reference,
                self.device,
                self.chroma_size,
                self.stack,
                self.temporal,
                self.full_resolution,
                self.add_lab,
                self.hints,
                self.live,
                self.next_color.combo,
                self.hints_info,
                self.run_button,
                self.cancel_button,
                self.saver.button,
                self.status,
            ]
        )
        wrapping_label(self.status)
        wrapping_label(self.hints_info)
        wrapping_label(self.model_info)
        compact_combos(
            self.image, self.model, self.reference, self.device, self.chroma_size, self.stack,
            self.hints, self.next_color.combo,
        )  # fmt: skip
        self.image.changed.connect(self._on_image_changed)
        self.stack.changed.connect(self._update_temporal_support)
        self.reference.changed.connect(self._on_reference_changed)
        # a new colour layer can be a reference: the automatic choice looks again
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        self.hints.changed.connect(self._on_hints_layer_changed)
        self.live.changed.connect(self.live_hints.toggled)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        # the dock's close button takes the widget out of its dock: the run stops
        on_removed(self.native, self._abandon_run)
        self.reset_choices()
        self._on_image_changed()
        self._update_hint_support()
        self.picker.update_info()
        if probe:
            self.refresh_choices()
        scroll_rows(self)  # last: the rows move into a scroll area for short screens

    # ------------------------------------------------------------ choices

    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _reference_choices(self, _widget=None):
        image = self.image.value if hasattr(self, "image") else None
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image) and layer.rgb and layer is not image
        ]

    def _hint_choices(self, _widget=None):
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, HINT_LAYER_TYPES)
        ]

    def _model_choices(self, _widget=None):
        return self.picker.choices()

    def refresh_choices(self, start: bool = True, block: bool = False):
        """List the devices and models again in a worker (see :meth:`.ModelPicker.refresh`)."""
        return self.picker.refresh(start=start, block=block)

    def set_checkpoint(self, path) -> None:
        """Offer the checkpoint file ``path`` in the model menu and select it."""
        self.picker.set_checkpoint(path)
        self._update_hint_support()

    def set_model(self, name_or_path) -> None:
        """Select a registered model by name, or a checkpoint file by path."""
        if name_or_path in self.picker.values():
            self.model.value = name_or_path
        else:
            self.set_checkpoint(name_or_path)

    def _on_model_changed(self, value=None) -> None:
        if not self._setting_model:
            self._auto_model = False  # the user's choice: keep it for other images
        self._update_hint_support()
        self._update_reference_support()

    def card(self, name_or_path=None) -> dict | None:
        """The card of a model in the list (default: the chosen one); None if unknown yet."""
        return self.picker.card(name_or_path)

    def _on_image_changed(self, _value=None) -> None:
        layer = self.image.value
        self.stack.enabled = layer is not None and layer.ndim > 2
        self._update_temporal_support()
        self.full_resolution.enabled = layer is not None and bool(layer.multiscale)
        self.reference.reset_choices()
        if self._auto_model and layer is not None:
            self._choose_default_model(layer)
        self._update_reference_support()
        if hasattr(self, "hints"):
            fit_point_size(self.hints.value, layer)

    def _update_temporal_support(self, _value=None) -> None:
        """The check box applies to a stack coloured whole; its tooltip says when it does."""
        layer = self.image.value
        stack = isinstance(layer, Image) and layer.ndim - (3 if layer.rgb else 2) > 0
        whole = self.stack.value == ALL_PLANES
        self.temporal.enabled = stack and whole
        if not stack:
            why = "Applies to stacks (time-lapses, z-stacks); this image is a single plane."
        elif not whole:
            why = "Applies when every plane is colorized (stack: all planes)."
        else:
            axis = layer.axis_labels[layer.ndim - (4 if layer.rgb else 3)]
            why = f"Applies along the axis '{axis}' (the last one before the image's)."
        self.temporal.tooltip = f"{TEMPORAL_TIP}\n\n{why}"

    def _on_layers_changed(self, _event=None) -> None:
        self.reference.reset_choices()
        if self._auto_model and isinstance(self.image.value, Image):
            self._choose_default_model(self.image.value)
        self._update_reference_support()

    def _choose_default_model(self, layer) -> None:
        """Pick the method that helps this image (see :func:`.choice.suggest_method`)."""
        from ..choice import suggest_method

        references = self._reference_choices()
        shape = layer.level_shapes[0][: layer.ndim][-2:]
        name = suggest_method(shape, reference=bool(references))
        if name not in [value for _label, value in self._model_choices()]:
            return  # e.g. the photo model before the registry has been read
        self._setting_model = True
        try:
            self.model.value = name
            if name == "reference" and self.reference.value is None:
                self.reference.value = references[0][1]
        finally:
            self._setting_model = False
        from ..registry import needs_download

        if needs_download(name):
            self.status.value = (
                f"{name} is downloaded when you press Colorize. Offline: open a colour image "
                "of the same kind as the reference, or add hint points and choose propagate"
            )

    def _update_reference_support(self) -> None:
        wanted = self.model.value == "reference"
        self.reference.enabled = wanted
        if wanted and self.reference.value is None:
            self.model_info.value = (
                "open or pick an RGB layer of the same kind of scene or tissue as the reference"
            )

    def _on_reference_changed(self, _value=None) -> None:
        self._update_reference_support()
        self.live_hints.hints_edited()  # live mode re-colorizes with the new reference

    def _reference_method(self, layer):
        """The reference method fitted to ``layer``'s colours, kept while its data is the same."""
        from ..guided import ReferenceColorizer

        key = (id(layer), id(layer.data))
        if key not in self._reference_methods:
            data = layer.data[0] if layer.multiscale else layer.data
            self._reference_methods = {key: ReferenceColorizer(np.asarray(data))}
        return self._reference_methods[key]

    # -------------------------------------------------------------- hints

    @property
    def takes_hints(self) -> bool:
        """Whether the chosen model takes colour hints (from its metadata)."""
        return self._takes_hints

    def _update_hint_support(self) -> None:
        from ..hints import model_takes_hints

        model = self.model.value
        # a hint-aware network reads them itself; any other method is corrected by them
        self._takes_hints = model not in (None, BROWSE)
        self.hints.enabled = self._takes_hints
        self.live.enabled = self._takes_hints
        if not self._takes_hints:
            self.hints_info.value = "choose a model to use colour hints"
        elif self.hints.value is None:
            self.hints_info.value = (
                "add a Points, Shapes or Labels layer and pick it as hints: its colours "
                "(points, strokes, filled shapes, labels) steer the colours around them"
                + (" (propagate needs them)" if model == "propagate" else "")
            )
        elif model == "propagate":
            self.hints_info.value = "the hints' colours spread along lightness edges"
        elif model_takes_hints(model):
            self.hints_info.value = "the model reads the hints itself (learned hint branch)"
        else:
            self.hints_info.value = "the hints correct the colours around them"
        if self._takes_hints and isinstance(self.hints.value, Points):
            self.hints_info.value += (
                "; pick the next point's colour under 'next point colour' (napari's own "
                "colour box recolours the selected point)"
            )

    def _on_hints_layer_changed(self, layer=None) -> None:
        layer = self.hints.value
        if layer is self.live_hints.layer:
            return
        self.live_hints.follow(layer)
        self.next_color.set_points(layer)
        fit_point_size(layer, self.image.value)
        self._update_hint_support()
        self.live_hints.hints_edited()

    def _hints_for(self, image, selection, plane_only: bool):
        """The job's hints: a callable making the hint map(s) in the worker, or None."""
        layer = self.hints.value
        if layer is None or not self._takes_hints:
            return None
        source = layer_hints(layer, image, selection, self._viewer.dims.point)
        if plane_only or not source.leading_shape:
            return functools.partial(source.plane, (0,) * len(source.leading_shape))
        return source.stack

    def live_run(self, *, force: bool = False):
        """Re-colorize the current plane with the current hints (see :meth:`.LiveHints.run`)."""
        return self.live_hints.run(force=force)

    # --------------------------------------------------------------- runs

    @property
    def busy(self) -> bool:
        """Whether a colorization is running."""
        return self._worker is not None

    def _make_job(self, layer, *, live: bool = False) -> _Job:
        """Decide, on the main thread and without reading pixels, what a run does.

        ``live``: the current plane only, with the hints, no L, a, b layers.
        """
        from .. import images
        from ..lazy_result import wants_lazy_result

        if layer is None:
            raise ValueError("there is no Image layer to colorize; open an image first")
        if not isinstance(layer, Image):
            raise ValueError(
                f"layer {layer.name!r} is a {type(layer).__name__} layer; "
                "Colorize works on Image layers (grayscale or RGB)"
            )
        model = self.model.value
        if model in (None, BROWSE):
            raise ValueError("choose a model, or a checkpoint file with 'Browse checkpoint...'")
        method = None
        if model == "reference":
            reference = self.reference.value
            if reference is None:
                raise ValueError(
                    "choose a reference: an RGB layer of the same kind of scene or tissue "
                    "(open a colour image, then pick it under 'reference')"
                )
            method = self._reference_method(reference)
        ndim = layer.ndim
        level = 0
        if layer.multiscale:
            shapes = [tuple(level_data.shape) for level_data in layer.data]
            level = choose_level(shapes, layer.data_level, self.full_resolution.value)
        plane = None
        temporal = bool(self.temporal.value and self.temporal.enabled)
        # live with consistent planes re-colours the whole stack from the edited hints
        if ndim > 2 and ((live and not temporal) or self.stack.value == CURRENT_PLANE):
            point = layer.world_to_data(self._viewer.dims.point)
            plane = plane_index(point, layer.level_shapes[0], ndim - 2)
        selection = select_source(
            layer.data, ndim=ndim, multiscale=layer.multiscale, level=level, plane=plane
        )
        # shape and dtype checks need no pixels: report them before starting a thread
        layout = images.describe(selection.array, rgb=bool(layer.rgb))
        result_shape = (*layout.leading_shape, *layout.spatial_shape, 3)
        geometry = layer_geometry(layer)
        outputs = {
            role: output_layer_kwargs(layer.name, role, selection=selection, **geometry)
            for role in ("colorized", *LAB_CHANNELS)
        }
        return _Job(
            source=layer.name,
            array=selection.array,
            rgb=bool(layer.rgb),
            model=str(model),
            device=str(self.device.value or "auto"),
            chroma_size=self.chroma_size.value,
            # what the user sees is what gets colorized: gray values map to L
            # through the layer's contrast limits
            value_range=None if layer.rgb else tuple(float(v) for v in layer.contrast_limits),
            add_lab=bool(self.add_lab.value) and not live,
            outputs=outputs,
            hints=self._hints_for(layer, selection, plane_only=plane is not None),
            method=method,
            # the plane's index in the colorized level (a pyramid may thin the stack too)
            plane=None
            if plane is None
            else tuple(
                round(o / f) for o, f in zip(selection.offset[: ndim - 2], selection.factors)
            ),
            live=live,
            temporal=temporal and plane is None,
            # a large lazy stack is written to disk, not into memory
            lazy=plane is None and not live and wants_lazy_result(selection.array, result_shape),
            leading_shape=tuple(layout.leading_shape),
        )

    def _job_worker(self, job: _Job):
        """An unstarted worker running ``job`` (full runs and live runs alike)."""
        return thread_worker(_run_job, start_thread=False)(job)

    def run(self, layer=None, *, start: bool = True):
        """Colorize ``layer`` (default: the chosen one) in a background thread.

        Parameters
        ----------
        layer : napari.layers.Layer, optional
            The layer; the one chosen in the widget when None.
        start : bool
            Start the worker; pass False to connect to its signals first
            and call ``worker.start()`` yourself.

        Returns
        -------
        GeneratorWorker or None
            None when the run could not start (the reason is shown as a
            notification) or one is already running.
        """
        if isinstance(layer, bool):  # the button's "changed" signal passes its state
            layer = None
        if self.busy:
            show_info("a colorization is already running; cancel it first")
            return None
        try:
            job = self._make_job(layer if layer is not None else self.image.value)
        except Exception as exc:
            self._report(exc)
            return None
        worker = self._job_worker(job)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.aborted.connect(self._on_aborted)
        # not a method: it must run even when the widget has gone
        worker.aborted.connect(functools.partial(discard_job_store, job))
        worker.finished.connect(self._on_finished)
        self._worker, self._job = worker, job
        self._progress = progress(total=0, desc=f"Colorizing {job.source}")
        self.status.tooltip = None  # an earlier error's full text
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"colorizing {job.source}..."
        if job.lazy:
            from ..lazy_result import results_dir

            self.status.value = (
                f"colorizing {job.source} into a store on disk under {results_dir()} "
                "(too large for memory)..."
            )
        if start:
            worker.start()
        return worker

    def cancel(self, _value=None) -> None:
        """Stop the running colorization after the current tile or plane."""
        if self._job is not None:
            self._job.request_stop()
        if self._worker is not None:
            self._worker.quit()
            self.status.value = "cancelling..."

    def _abandon_run(self, *_args) -> None:
        """The widget is gone (dock closed, viewer closed): stop the run, touch nothing."""
        self.live_hints.abandon()
        worker, job = self._worker, self._job
        if worker is None:
            return
        for signal, slot in (
            (worker.yielded, self._on_progress),
            (worker.returned, self._on_returned),
            (worker.aborted, self._on_aborted),
            (worker.finished, self._on_finished),
        ):
            with contextlib.suppress(TypeError, RuntimeError):  # already disconnected
                signal.disconnect(slot)
        worker.returned.connect(discard_result)  # a lazy result's store is not kept
        if job is not None:
            job.request_stop()
        worker.quit()
        if self._progress is not None:
            self._progress.close()
        self._worker = self._job = self._progress = None

    def _on_progress(self, event) -> None:
        job, bar = self._job, self._progress
        if job is None or job.stop or bar is None:  # cancelling: keep saying so
            return
        message = progress_text(event, job.leading_shape)
        if message:
            self.status.value = message
        # last: updating napari's progress bar may process events, including
        # this run's end
        total = int(getattr(event, "total", 0) or 0)
        done = int(getattr(event, "done", 0) or 0)
        if total and bar.total != total:
            bar.total = total
            if done < bar.n:  # a new phase (download, then colorization) counts from 0
                bar.n = 0
        if message:
            bar.set_description(message)
        bar.update(max(done - bar.n, 0))

    def _on_returned(self, result: _Result) -> None:
        job = self._job
        if result.error is not None:
            self._report(result.error)
            return
        if result.rgb is None or job is None:  # stopped before the end
            self.status.value = "cancelled"
            return
        try:
            colorized = self._show_result(job, result)
            self._viewer.layers.selection.active = colorized
        except Exception as exc:
            self._report(exc)
            return
        done = f"done: {colorized.name}"
        if result.store is not None:
            done += (
                f", read from {result.store.path} "
                f"({result.store.nbytes / 1e6:.0f} MB on disk; removed when the layer is "
                "deleted or napari quits: save the layer to keep it)"
            )
        self.status.value = done + (f"; {result.precision}" if result.precision else "")

    def _result_to_save(self):
        """The chosen image's colorized layer and what made it, for "Save result as OME-Zarr"."""
        image = self.image.value
        for layer in self._viewer.layers:
            mark = (layer.metadata or {}).get(METADATA_KEY) or {}
            if image is not None and mark == {"source": image.name, "role": "colorized"}:
                about = {
                    "model": str(self.model.value),
                    "source": image.name,
                    "options": {
                        "working_size": str(self.chroma_size.value),
                        "temporal": bool(self.temporal.value and self.temporal.enabled),
                        "hints": None if self.hints.value is None else self.hints.value.name,
                    },
                }
                return layer, about
        return None, None

    def _show_result(self, job: _Job, result: _Result):
        """Put a run's result into its output layers (main thread); returns the colorized one."""
        return show_result(self._viewer, job, result, hints=self.hints.value)

    def _on_aborted(self) -> None:
        self.status.value = "cancelled"
        show_info("colorization cancelled")

    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
        self._progress = None
        self._worker = None
        self._job = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False

    def _report(self, exc: BaseException) -> None:
        """An error in one or two lines of status; the whole text in its tooltip, the log
        and the notification."""
        message = str(exc) or type(exc).__name__
        self.status.value = f"error: {short_error(exc)}"
        self.status.tooltip = message
        logger.warning("colorization failed: %s", message)
        show_error(message)
