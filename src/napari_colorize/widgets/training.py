"""The Training dock widget: train a colorizer on layers, a folder or the CryptoPunks.

The widget only gathers choices and shows progress. The data come from
:func:`napari_colorize.data.layer_datasets.layer_datasets` (or ``spec_datasets``), the run
is built by :func:`napari_colorize.training.run.plan_run` from the choices: a
:class:`napari_colorize.training.session.TrainingSession` driven by a
``thread_worker`` over its event generator, and layers are touched only in the
main-thread handlers of that worker. When a run ends (or is stopped) its
checkpoint is registered under the model name, and the Colorize widgets of the
viewer list it at once.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from ._model_picker import ModelPicker, training_entries, training_probe
from ._training_output import (
    next_free_output,
    nothing_trained_line,
    output_path,
    overwrite_warning,
    trained_nothing,
)
from ._viewer import is_plugin_output, scroll_rows, wrapping_label
from .loss_plot import LossPlot

if TYPE_CHECKING:
    import napari

__all__ = ["LossPlot", "TrainingWidget"]

logger = logging.getLogger(__name__)

LAYERS, FOLDER, PUNKS = "layers", "folder", "CryptoPunks"
#: Start-from entry that opens a file dialog.
BROWSE = "fine-tune a checkpoint file..."
PREVIEW_ROLE = "training preview"
#: Side of a CryptoPunk, in pixels.
PUNK_SIZE = 24
_CHECKPOINT_FILTER = "Model checkpoints (*.safetensors);;All files (*)"


# ------------------------------------------------------------------ the worker side


@dataclass
class _Outcome:
    result: Any = None
    error: BaseException | None = None


@dataclass
class _Prepared:
    """First event of a run: its session and data, built in the worker."""

    session: Any
    data: Any


def _run_session(prepare, stop_requested=lambda: False):
    """Generator run by the worker thread: the session's events, then an _Outcome.

    ``prepare()`` gives ``(session, data)``; for a folder or the CryptoPunks it
    reads (and on first use downloads) the data, which is why it runs here.
    ``stop_requested()`` is asked once the session exists: a Stop pressed
    meanwhile must stop it before its first step, not when the main thread
    gets to the ``_Prepared`` event.
    """
    try:
        session, data = prepare()
        if stop_requested():
            session.request_stop()
        yield _Prepared(session, data)
        result = yield from session.run()
        return _Outcome(result=result)
    except Exception as exc:  # reported by the main thread
        logger.debug("training failed", exc_info=True)
        return _Outcome(error=exc)


def _default_output() -> Path:
    from ..registry import user_models_file

    return user_models_file().parent / "trained" / "my-colorizer.safetensors"


# ------------------------------------------------------------------ the widget


class TrainingWidget(Container):
    """Train a colorizer from layers in the viewer (or a folder, or the CryptoPunks).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    probe : bool
        List architectures, models and devices in a background thread now
        (otherwise only alpha, beta and ``auto`` until :meth:`refresh_choices`).
    """

    def __init__(self, viewer: napari.viewer.Viewer, probe: bool = True):
        super().__init__(labels=True)
        self._viewer = viewer
        self._worker = None
        self._session = None
        self._stop_early = False
        self._data = None
        self._validation_line = ""
        self._auto_output = True  # the output field holds a name the widget chose
        self._setting_output = False
        self._overwrite_ok: Path | None = None  # an existing file the user agreed to replace
        self._first_step: int | None = None  # the step the run started from (StartEvent)
        self._resuming = False
        self.last_result = None
        self.last_error: BaseException | None = None

        self.source = ComboBox(label="data", choices=[LAYERS, FOLDER, PUNKS], value=LAYERS)
        self.layers = Select(
            label="layers",
            choices=self._layer_choices,
            tooltip="RGB layers (input: their L, target: their colours), and optionally a "
            "grayscale layer with the RGB layer of its shape (input: the gray, target: the "
            "RGB layer's colours).",
        )
        self.folder = FileEdit(label="folder", mode="d", visible=False)
        self.split = ComboBox(
            label="validation",
            choices=[
                ("auto", "auto"),
                ("held-out planes", "planes"),
                ("held-out strip", "regions"),
                ("none", "none"),
            ],
            value="auto",
            tooltip="auto: whole planes of a stack, a strip of a single image",
        )
        self.val_fraction = FloatSpinBox(label="held out", value=0.2, min=0.01, max=0.9, step=0.05)
        self.preview_index = SpinBox(
            label="preview image", value=0, min=0, max=10_000,
            tooltip="which held-out plane (or strip) the preview layer shows",
        )  # fmt: skip
        self.picker = ModelPicker(
            training_probe, entries=training_entries(["alpha", "beta"], []), label="model",
            name="start_from", browse=BROWSE, browse_title="Fine-tune a model checkpoint",
            file_filter=_CHECKPOINT_FILTER, devices=[("auto", "auto"), ("cpu", "cpu")],
            file_entry=lambda path: (f"fine-tune {Path(path).name}", f"file:{path}"),
        )  # fmt: skip
        self.start_from, self.device = self.picker.combo, self.picker.device
        self.model_config = LineEdit(
            label="model config", value="{}",
            tooltip='architecture options as JSON, e.g. {"width": 8} for alpha',
        )  # fmt: skip
        self.length_unit = ComboBox(label="train for", choices=["steps", "epochs"], value="steps")
        self.length = SpinBox(label="", value=500, min=1, max=10_000_000)
        self.batch_size = SpinBox(label="batch size", value=16, min=1, max=4096)
        self.patch_size = SpinBox(label="patch size", value=64, min=8, max=4096, step=8)
        self.lr = LineEdit(label="learning rate", value="1e-3")
        self.amp = CheckBox(text="mixed precision (CUDA)", value=True)
        self.preview_every = SpinBox(label="preview every", value=50, min=1, max=100_000)
        self.output = FileEdit(
            label="output", mode="w", filter="*.safetensors", value=str(_default_output())
        )
        self.model_name = LineEdit(
            label="model name", value="",
            tooltip="name under which the Colorize widget offers the result "
            "(default: the output file's name)",
        )  # fmt: skip
        self.start_button = PushButton(text="Start")
        self.resume_button = PushButton(text="Resume", enabled=False)
        self.progress = ProgressBar(label="", value=0, min=0, max=1, visible=True)
        self.status = Label(value="")
        self.extend(
            [
                self.source, self.layers, self.folder, self.split, self.val_fraction,
                self.preview_index, self.start_from, self.model_config, self.length_unit,
                self.length, self.batch_size, self.patch_size, self.lr, self.device, self.amp,
                self.preview_every, self.output, self.model_name, self.start_button,
                self.resume_button, self.progress, self.status,
            ]
        )  # fmt: skip
        self.loss_plot = LossPlot()
        self.native.layout().addWidget(self.loss_plot)
        wrapping_label(self.status)
        scroll_rows(self)

        self.source.changed.connect(self._on_source_changed)
        self.start_button.changed.connect(self._on_start_clicked)
        self.resume_button.changed.connect(self._on_resume_clicked)
        self.output.changed.connect(self._on_output_changed)
        self.reset_choices()
        self.start_from.value = "arch:beta"
        self._update_resume()
        if probe:
            self.refresh_choices()

    # ------------------------------------------------------------ choices

    def _layer_choices(self, _widget=None):
        # results and previews of this plugin are no training data: they would teach its guesses
        return [
            (layer.name, layer)
            for layer in self._viewer.layers
            if isinstance(layer, Image) and not is_plugin_output(layer)
        ]

    def _start_choices(self, _widget=None):
        return self.picker.choices()

    def refresh_choices(self, start: bool = True):
        """List architectures, models and devices again in a background thread; the worker."""
        return self.picker.refresh(start=start)

    def set_checkpoint(self, path) -> None:
        """Fine-tune the checkpoint file ``path``."""
        self.picker.set_checkpoint(path)

    def _on_source_changed(self, value=None) -> None:
        value = self.source.value
        self.layers.visible = value == LAYERS
        self.folder.visible = value == FOLDER
        self.split.visible = value == LAYERS
        self.preview_index.visible = value == LAYERS

    def _update_resume(self, _value=None) -> None:
        out = Path(str(self.output.value)).expanduser()
        self.resume_button.enabled = not self.busy and out.is_file()

    def _on_output_changed(self, _value=None) -> None:
        if not self._setting_output:
            self._auto_output = False  # the user's choice: never renamed, asked before replaced
        self._overwrite_ok = None
        if not self.busy:
            self.start_button.text = "Start"
        self._update_resume()

    def _set_output(self, path: Path) -> None:
        self._setting_output = True
        try:
            self.output.value = str(path)
        finally:
            self._setting_output = False

    def _check_output(self) -> bool:
        """Whether a new run may write the output file; otherwise say why (on a new name)."""
        try:
            path = output_path(self.output.value)
        except ValueError:
            return True  # reported by _make_session
        if not path.exists() or path == self._overwrite_ok:
            return True
        if self._auto_output:  # the widget's own default name: the next free one
            fresh = next_free_output(path)
            self._set_output(fresh)
            show_info(f"{path.name} is kept; this run writes {fresh.name}")
            return True
        self._overwrite_ok = path  # asked once; pressing again replaces it
        self.start_button.text = "Overwrite"
        message = overwrite_warning(path)
        self.status.value = message
        show_info(message)
        return False

    # --------------------------------------------------------------- runs

    @property
    def busy(self) -> bool:
        """Whether a training run is going on."""
        return self._worker is not None

    def _layer_arrays(self):
        from ..data.layer_datasets import LayerArray

        arrays = []
        for layer in self.layers.value or []:
            data = layer.data[0] if layer.multiscale else layer.data
            value_range = None if layer.rgb else tuple(float(v) for v in layer.contrast_limits)
            arrays.append(LayerArray(layer.name, data, bool(layer.rgb), value_range))
        return arrays

    def _training_data(self, seed: int):
        from ..data.layer_datasets import layer_datasets, spec_datasets

        patch = int(self.patch_size.value)
        if self.source.value == LAYERS:
            return layer_datasets(
                self._layer_arrays(), patch, split=self.split.value,
                val_fraction=float(self.val_fraction.value), seed=seed,
                preview_index=int(self.preview_index.value),
            )  # fmt: skip
        held_out = float(self.val_fraction.value)
        if self.source.value == FOLDER:
            folder = Path(str(self.folder.value)).expanduser()
            if not str(self.folder.value).strip() or not folder.is_dir():
                raise ValueError(f"choose an existing folder of colour images (got {folder})")
            spec = f"folder:{folder}"
        else:
            # the punks are 24x24: a smaller patch crops them, a larger one means whole punks
            spec, patch = "punks:train", (patch if patch < PUNK_SIZE else None)
        # reading the files (or fetching the CryptoPunks) is left to the worker
        return functools.partial(spec_datasets, spec, patch, val_fraction=held_out, seed=seed)

    def _make_session(self, resume: bool):
        """Check the choices on the main thread; ``(prepare, model name)``.

        ``prepare()`` gives ``(session, data)``. Layers are split and checked
        here, so that bad data starts nothing; a folder or the CryptoPunks are
        read by ``prepare`` in the worker (the punks may be downloaded first).
        """
        from ..training.run import plan_run
        from ..training.session import check_model_name, default_model_name

        out_path = output_path(self.output.value)
        name = check_model_name(self.model_name.value.strip() or default_model_name(out_path))
        steps, unit = int(self.length.value), self.length_unit.value
        every = int(self.preview_every.value)
        plan = plan_run(
            start=self.start_from.value or "arch:beta", model_config=self.model_config.value,
            steps=steps if unit == "steps" else None, epochs=steps if unit == "epochs" else None,
            batch_size=int(self.batch_size.value), lr=self.lr.value,
            patch_size=int(self.patch_size.value), device=str(self.device.value or "auto"),
            amp=bool(self.amp.value), out=out_path, resume=resume, preview_every=every,
            own_images=self.source.value in (LAYERS, FOLDER),
        )  # fmt: skip
        data = self._training_data(plan.config.seed)

        def build(data):
            return plan.session(data, model_name=name, register=False), data

        if callable(data):  # a folder or the punks: read in the worker
            return (lambda: build(data())), name
        prepared = build(data)  # layers: checked here, so bad data starts nothing
        return (lambda: prepared), name

    def start(self, *, resume: bool = False, start: bool = True):
        """Start (or resume) training in a background thread.

        Returns the worker (started unless ``start`` is False, so that a caller
        can connect to it first), or None when the choices are not valid (the
        reason is shown) or a run is going on.
        """
        if self.busy:
            show_info("training is already running; stop it first")
            return None
        if not resume and not self._check_output():
            return None
        try:
            prepare, name = self._make_session(resume)
        except Exception as exc:
            self._report(exc)
            return None
        self._overwrite_ok = None
        self._first_step = None
        self._resuming = resume
        self._session, self._data, self._name = None, None, name
        self._stop_early = False
        self._validation_line = ""
        self.last_result = self.last_error = None
        worker = thread_worker(_run_session, start_thread=False)(prepare, lambda: self._stop_early)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        if not resume:
            self.loss_plot.clear()
        self.start_button.text = "Stop"
        self.resume_button.enabled = False
        self.progress.value = 0
        self.status.value = "resuming..." if resume else "starting..."
        if start:
            worker.start()
        return worker

    def stop(self) -> None:
        """Stop after the current step; the checkpoint is written and registered."""
        if self._worker is None:
            return
        self._stop_early = True  # the session may still be being prepared
        if self._session is not None:
            self._session.request_stop()
        self.start_button.enabled = False
        self.status.value = "stopping after this step..."

    def _on_start_clicked(self, _value=None) -> None:
        if self.busy:
            self.stop()
        else:
            self.start()

    def _on_resume_clicked(self, _value=None) -> None:
        self.start(resume=True)

    # ----------------------------------------------------------- events

    def _on_event(self, event) -> None:
        from ..training.events import (
            CheckpointEvent,
            PreviewEvent,
            StartEvent,
            StepEvent,
            ValidationEvent,
        )

        if isinstance(event, _Prepared):
            self._session, self._data = event.session, event.data
            if self._stop_early:
                event.session.request_stop()
        elif isinstance(event, StartEvent):
            self._first_step = event.step
            self.progress.max = max(1, event.total_steps)
            self.progress.value = min(event.step, event.total_steps)
            self.status.value = (
                f"training on {event.device}: {event.n_train} patches/epoch, "
                f"{event.n_val} for validation"
            )
        elif isinstance(event, StepEvent):
            self.progress.max = max(1, event.total_steps)
            self.progress.value = min(event.step, event.total_steps)
            self.loss_plot.add_step(event.step, event.loss, event.losses)
            eta = _format_seconds(event.eta_s)
            self.status.value = (
                f"step {event.step}/{event.total_steps}  loss {event.loss:.4f}  "
                f"{event.images_per_s:.1f} img/s  ETA {eta}"
                + (f"  {self._validation_line}" if self._validation_line else "")
            )
        elif isinstance(event, ValidationEvent):
            from ..training.baseline import describe_validation

            value = event.metrics.get("val_loss")
            if value is not None:
                self.loss_plot.add("val", event.step, value)
            self._validation_line = describe_validation(event.metrics)
        elif isinstance(event, PreviewEvent) and event.rgb is not None:
            self._show_preview(event.rgb)
        elif isinstance(event, CheckpointEvent):
            logger.debug("checkpoint at step %s: %s", event.step, event.path)

    def _preview_kwargs(self) -> dict:
        data = self._data
        source = getattr(data, "preview_source", None)
        name = f"{source or 'training'} preview"
        kwargs = {"name": name, "rgb": True, "metadata": {"napari_colorize": {
            "source": source, "role": PREVIEW_ROLE}}}  # fmt: skip
        layer = None
        if source is not None and source in self._viewer.layers:
            layer = self._viewer.layers[source]
        if layer is not None:
            scale = np.asarray(layer.scale[-2:], dtype=float)
            translate = np.asarray(layer.translate[-2:], dtype=float)
            kwargs["scale"] = scale
            kwargs["translate"] = translate + np.asarray(data.preview_offset) * scale
        return kwargs

    @property
    def preview_layer(self):
        """The preview layer of the current or last run, if it is in the viewer."""
        for layer in self._viewer.layers:
            meta = (layer.metadata or {}).get("napari_colorize") or {}
            if meta.get("role") == PREVIEW_ROLE:
                return layer
        return None

    def _show_preview(self, rgb) -> None:
        kwargs = self._preview_kwargs()
        layer = self.preview_layer
        if layer is not None and layer.data.shape == rgb.shape:
            layer.data = rgb
            return
        if layer is not None:
            self._viewer.layers.remove(layer)
        self._viewer.add_image(rgb, **kwargs)

    def _on_returned(self, outcome: _Outcome) -> None:
        if outcome.error is not None:
            self.last_error = outcome.error
            self._report(outcome.error)
            return
        result = outcome.result
        self.last_result = result
        if result is None:
            self.status.value = "stopped before the first step"
            return
        state = "stopped" if result.stopped else "done"
        if trained_nothing(result, self._first_step):
            self._discard_untrained(result)
            return
        if not result.path:
            self.status.value = f"{state} at step {result.step} (nothing written)"
            return
        try:
            from ..training.session import register_trained_model

            register_trained_model(
                self._name,
                result.path,
                description=f"trained in napari on {self._data.description}",
            )
        except Exception as exc:
            self._report(exc)
            return
        self._refresh_colorize_widgets()
        from ..training.baseline import describe_validation

        val = result.metrics.get("val_loss")
        shown = f", val loss {val:.4f}" if val is not None else ""
        compared = describe_validation(result.metrics)
        shown += f", {compared}" if compared else ""
        self.status.value = (
            f"{state} at step {result.step}/{result.total_steps}{shown}; "
            f"registered as {self._name!r} ({Path(result.path).name})"
        )
        show_info(f"training {state}: model {self._name!r} is ready in the Colorize widget")

    def _discard_untrained(self, result) -> None:
        """A run without a training step: keep no untrained file, register nothing, say so."""
        line = nothing_trained_line(result)
        if result.path and not self._resuming:  # the starting weights, written on stopping
            Path(result.path).unlink(missing_ok=True)
        elif result.path:  # a resumed run: its checkpoint holds what it held
            line += f"; {Path(result.path).name} is as it was"
        self.status.value = line
        show_info(f"training: {line}")

    def _refresh_colorize_widgets(self) -> None:
        """Have every Colorize widget of this viewer list the new model now."""
        from .colorize import ColorizeWidget

        try:
            docked = list(self._viewer.window.dock_widgets.values())
        except Exception:  # a viewer without a window (headless)
            docked = []
        for widget in docked:
            if isinstance(widget, ColorizeWidget):
                try:
                    widget.refresh_choices(block=True)
                except TypeError:  # an older Colorize widget: list in the background
                    widget.refresh_choices()

    def _on_finished(self) -> None:
        self._worker = None
        self._session = None  # the model and optimizer go with it
        self.start_button.text = "Start"
        self.start_button.enabled = True
        self._update_resume()

    def _report(self, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        self.status.value = f"error: {message}"
        show_error(message)


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
