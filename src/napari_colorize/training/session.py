"""One training run as the viewer drives it: train, preview, stop, resume, register, clean up.

:class:`TrainingSession` wraps a :class:`~napari_colorize.training.Trainer` and
adds what an interactive run needs on top of its events:

- a :class:`~napari_colorize.training.PreviewEvent` of a whole held-out image
  (not one validation tile) at the start and every ``preview_every`` steps;
- ``resume``: continue the run saved in the output file;
- registering the result under a model name (:func:`register_trained_model`),
  after which the listeners added with :func:`add_models_listener` are called,
  so that model menus can refresh;
- freeing the model, its optimizer state and the CUDA cache when the run ends,
  is stopped or fails.

Qt-free: the training widget runs :meth:`TrainingSession.run` in a
``thread_worker`` and registers the model from its main-thread handler.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .events import PreviewEvent, StartEvent, StepEvent, TrainEvent, TrainResult

__all__ = [
    "ModelRegisteredEvent",
    "TrainingSession",
    "add_models_listener",
    "check_model_name",
    "default_model_name",
    "register_trained_model",
    "release_memory",
    "remove_models_listener",
    "resume_overrides",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_listeners: list[Callable[[str], None]] = []


@dataclass
class ModelRegisteredEvent(TrainEvent):
    """The trained model was registered as ``name`` (its file is ``path``)."""

    name: str = ""
    path: str = ""


def add_models_listener(callback: Callable[[str], None]) -> None:
    """Call ``callback(name)`` whenever :func:`register_trained_model` registers a model.

    It is called in the thread that registers (the main thread, from the training
    widget); GUI code called from elsewhere must hand over to its own thread.
    """
    if callback not in _listeners:
        _listeners.append(callback)


def remove_models_listener(callback: Callable[[str], None]) -> None:
    """Stop calling ``callback``."""
    with contextlib.suppress(ValueError):
        _listeners.remove(callback)


def default_model_name(out) -> str:
    """A registry name from an output file name: ``runs/My model.safetensors`` -> ``My-model``."""
    stem = Path(str(out)).name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-._+")
    return name or "trained-model"


def check_model_name(name: str) -> str:
    """``name`` if it can be given to a trained model; ValueError saying why not otherwise."""
    from ..registry import get_model, model_names

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid model name {name!r}: use letters, digits and '.', '_', '+', '-', "
            "starting with a letter or digit"
        )
    if name in model_names() and get_model(name).source != "path":
        raise ValueError(f"{name!r} is the name of a built-in model; choose another name")
    return name


def register_trained_model(name: str, path, *, persist: bool = True, description: str = "") -> str:
    """Register the checkpoint ``path`` as ``name`` and tell the listeners.

    Parameters
    ----------
    name : str
    path : str or path-like
        The checkpoint written by the trainer.
    persist : bool
        Keep it registered in later sessions (see
        :func:`napari_colorize.registry.register_model`).
    description : str

    Returns
    -------
    str
        The name.
    """
    from ..registry import register_model

    register_model(check_model_name(name), path, description=description, persist=persist)
    for callback in list(_listeners):
        callback(name)
    return name


def resume_overrides(config) -> dict:
    """The fields of ``config`` that replace the saved run's when an interactive run resumes.

    Its length, device, validation and checkpoint intervals and output; the
    rest (architecture, data settings, optimizer...) is the saved run's.
    """
    return {
        "epochs": config.epochs, "max_steps": config.max_steps, "device": config.device,
        "preview_every": 0, "val_every": config.val_every,
        "checkpoint_every": config.checkpoint_every, "out": config.out,
    }  # fmt: skip


def release_memory(trainer=None) -> None:
    """Drop a trainer's model and optimizer state and give cached GPU memory back."""
    if trainer is not None:
        for attr in ("task", "optims", "ctx"):
            if hasattr(trainer, attr):
                setattr(trainer, attr, None)
    gc.collect()
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        with contextlib.suppress(Exception):
            mps.empty_cache()


class TrainingSession:
    """Train (or resume, or fine-tune) with previews of a whole image, then register the model.

    Parameters
    ----------
    config : TrainConfig
        Its ``out`` is the checkpoint file (required to resume and to register).
    train_data, val_data
        Datasets (or anything the Trainer takes).
    init_checkpoint : str or path, optional
        Fine-tune these weights (a checkpoint or a registered model name).
    resume : bool
        Continue the run saved in ``config.out``; ``config``'s ``epochs``,
        ``max_steps``, ``device``, ``preview_every``, ``val_every`` and
        ``checkpoint_every`` replace the saved ones, the rest is the saved run's.
    preview_l : numpy.ndarray, optional
        ``l_net`` ``(1, 1, H, W)`` of the image to preview.
    preview_every : int
        Steps between previews (0: only at the start and the end).
    model_name : str, optional
        Register the result under this name (default: from the output file name)
        when ``register`` is true.
    register : bool
        Register the checkpoint when the run ends or is stopped (and yield a
        :class:`ModelRegisteredEvent`). The widget registers from its main thread instead.
    persist : bool
        Keep the registration across sessions.
    """

    def __init__(
        self,
        config,
        train_data,
        val_data=None,
        *,
        init_checkpoint=None,
        resume: bool = False,
        preview_l: np.ndarray | None = None,
        preview_every: int = 0,
        model_name: str | None = None,
        register: bool = False,
        persist: bool = True,
    ):
        self.config = config
        self.train_data = train_data
        self.val_data = val_data
        self.init_checkpoint = init_checkpoint
        self.resume = bool(resume)
        self.preview_l = None if preview_l is None else np.asarray(preview_l, dtype=np.float32)
        self.preview_every = max(0, int(preview_every))
        self.register = bool(register)
        self.persist = bool(persist)
        self.model_name = model_name
        if (register or resume) and not config.out:
            raise ValueError("set an output file: it is needed to resume and to register")
        if register:
            self.model_name = check_model_name(model_name or default_model_name(config.out))
        if resume and not Path(config.out).expanduser().is_file():
            raise ValueError(
                f"there is nothing to resume: {config.out} does not exist yet; press Start"
            )
        self.trainer = None
        self._stop = False
        self.result: TrainResult | None = None

    def request_stop(self) -> None:
        """End the run after the current step (a final checkpoint is still written)."""
        self._stop = True
        if self.trainer is not None:
            self.trainer.request_stop()

    def _make_trainer(self):
        from .trainer import Trainer

        cfg = self.config
        if self.resume:
            overrides = resume_overrides(cfg)
            return Trainer.resume(cfg.out, self.train_data, self.val_data, **overrides)
        return Trainer(cfg, self.train_data, self.val_data, self.init_checkpoint)

    def preview(self) -> np.ndarray | None:
        """The current model's colorization of the preview image (RGB uint8), if any."""
        trainer = self.trainer
        if self.preview_l is None or trainer is None or trainer.task is None:
            return None
        import torch

        modules = trainer.task.modules().values()
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            l_net = torch.as_tensor(self.preview_l).to(trainer.device)
            return trainer.task.preview(l_net)
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)

    def run(self) -> Generator[TrainEvent, None, TrainResult | None]:
        """Train, yielding the trainer's events plus previews; returns the result."""
        try:
            self.trainer = self._make_trainer()
            if self._stop:
                self.trainer.request_stop()
            last_preview = -1
            for event in self.trainer.run():
                if isinstance(event, TrainResult):
                    if last_preview != event.step and self.preview_l is not None:
                        yield PreviewEvent(step=event.step, rgb=self.preview())
                    self.result = event
                    if self.register and event.path:
                        name = register_trained_model(
                            self.model_name, event.path, persist=self.persist,
                            description=f"trained on {self.config.data or 'layers'}",
                        )  # fmt: skip
                        yield ModelRegisteredEvent(step=event.step, name=name, path=event.path)
                    yield event
                    continue
                yield event
                due = isinstance(event, StartEvent) or (
                    isinstance(event, StepEvent)
                    and self.preview_every
                    and event.step % self.preview_every == 0
                )
                if due and self.preview_l is not None:
                    yield PreviewEvent(step=event.step, rgb=self.preview())
                    last_preview = event.step
            return self.result
        finally:
            trainer, self.trainer = self.trainer, None
            release_memory(trainer)
