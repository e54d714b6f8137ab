"""One training run from plain choices: the call the CLI and the Training widget share.

:func:`plan_run` checks the choices (a preset, or an architecture or model to
start from; data; length; output; resume; device, batch size, learning rate...)
and returns a :class:`RunPlan`; ``plan.trainer()`` builds the
:class:`~napari_colorize.training.Trainer` that runs it, ``plan.session(...)``
the :class:`~napari_colorize.training.session.TrainingSession` the widget drives
(previews, stop, resume). Neither front end holds training logic::

    plan = plan_run("beta-punks", steps=1000, out="runs/beta.safetensors")
    result = plan.trainer().fit()

    plan = plan_run(start="model:beta-punks", steps=500, out="tuned.safetensors")
    session = plan.session(layer_data, preview_every=50)

Importing this module is cheap; torch loads with the first trainer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .presets import preset_run

__all__ = ["RunPlan", "parse_start", "plan_run", "saved_train_config"]

#: Prefixes of a ``start`` choice: train an architecture anew, or fine-tune a model.
START_FORMS = ("arch:NAME", "model:NAME", "file:PATH")


@dataclass
class RunPlan:
    """A checked training run: its config, data, starting weights and the run it resumes.

    Attributes
    ----------
    config : TrainConfig
    train, val
        The datasets (None until given to :meth:`trainer` or :meth:`session`).
    init_checkpoint : str, optional
        Weights to fine-tune (a registered model name or a checkpoint file).
    resume : str, optional
        The checkpoint whose run continues.
    preview_every : int
        Steps between validations and previews of an interactive run (0: the config's).
    """

    config: Any
    train: Any = None
    val: Any = None
    init_checkpoint: str | None = None
    resume: str | None = None
    preview_every: int = 0
    #: ``config`` already holds the resumed run's settings (a preset run).
    _config_resumed: bool = False

    def _with_data(self, data) -> tuple[Any, Any]:
        """The datasets of ``data`` (a ``TrainingData`` or a dataset); ``config`` told of them."""
        if data is None:
            if self.train is None:
                raise ValueError("give the data to train on")
            return self.train, self.val
        train = getattr(data, "train", data)
        val = getattr(data, "val", None)
        description = getattr(data, "description", None)
        if description is not None:
            self.config.data = str(description)[:500]
        if self.preview_every:
            self.config.val_every = self.preview_every if val is not None else 0
        return train, val

    def trainer(self, data=None, *, distributed: bool = False):
        """The :class:`~napari_colorize.training.Trainer` of this run.

        Parameters
        ----------
        data : optional
            The data, if :func:`plan_run` was not given it: a
            :class:`~napari_colorize.data.layer_datasets.TrainingData` or a dataset.
        distributed : bool
            A :class:`~napari_colorize.training.distributed.DistributedTrainer`
            (the process group joined first).
        """
        train, val = self._with_data(data)
        if distributed:
            from .distributed import DistributedTrainer as trainer_class
        else:
            from .trainer import Trainer as trainer_class
        if self.resume and not self._config_resumed:
            from .session import resume_overrides

            return trainer_class.resume(self.resume, train, val, **resume_overrides(self.config))
        return trainer_class(self.config, train, val, self.init_checkpoint, resume=self.resume)

    def session(self, data=None, **options):
        """The :class:`~napari_colorize.training.session.TrainingSession` of this run.

        Parameters
        ----------
        data : optional
            As for :meth:`trainer`; a ``TrainingData`` also gives the preview image.
        **options
            ``preview_l``, ``model_name``, ``register``, ``persist`` of the session;
            ``preview_every`` defaults to the plan's.
        """
        from .session import TrainingSession

        train, val = self._with_data(data)
        if data is not None and getattr(data, "preview_l", None) is not None:
            options.setdefault("preview_l", data.preview_l)
        options.setdefault("preview_every", self.preview_every)
        return TrainingSession(
            self.config, train, val, init_checkpoint=self.init_checkpoint,
            resume=self.resume is not None, **options,
        )  # fmt: skip


def parse_start(start: str) -> tuple[str | None, str | None]:
    """``(architecture, None)`` for ``"arch:NAME"``; ``(None, model)`` for ``model:``/``file:``."""
    start = str(start or "")
    if start.startswith("arch:"):
        return start[len("arch:") :], None
    if start.startswith(("model:", "file:")):
        return None, start.partition(":")[2]
    raise ValueError("choose an architecture or a model to fine-tune")


def saved_train_config(path):
    """The :class:`~napari_colorize.training.TrainConfig` saved in checkpoint ``path``.

    Raises
    ------
    ValueError
        The file holds no training state (it was exported for inference).
    """
    from ..checkpoint import load_checkpoint
    from .config import TrainConfig

    saved = (load_checkpoint(path).training_meta or {}).get("train_config")
    if saved is None:
        raise ValueError(f"{path} holds no training state to resume from")
    return TrainConfig.from_dict(saved)


def _number(value, what: str) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"the {what} must be a number, got {value!r}") from None


def _model_config(value) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"the model config is not valid JSON: {exc}") from None
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise ValueError('the model config must be a JSON object, e.g. {"width": 8}')
    return value


def plan_run(
    preset: str | None = None,
    *,
    start: str | None = None,
    model_config=None,
    data=None,
    image=None,
    steps: int | None = None,
    epochs: int | None = None,
    out=None,
    resume=None,
    device: str | None = None,
    batch_size: int | None = None,
    lr=None,
    patch_size: int | None = None,
    seed: int | None = None,
    num_workers: int | None = None,
    amp: bool | str | None = None,
    compile: bool | None = None,
    preview_every: int = 0,
    own_images: bool = False,
) -> RunPlan:
    """Check the choices of a training run; the :class:`RunPlan` that builds it.

    Parameters
    ----------
    preset : str, optional
        A named recipe (:func:`~napari_colorize.training.presets.list_presets`);
        its data are built now, from ``data`` (a spec) or ``image`` (alpha).
    start : str, optional
        Without a preset: ``"arch:NAME"`` trains that architecture anew,
        ``"model:NAME"`` or ``"file:PATH"`` fine-tunes those weights.
    model_config : dict or str, optional
        Options of a new architecture (a dict or JSON text).
    data : optional
        With a preset, a dataset spec; otherwise a
        :class:`~napari_colorize.data.layer_datasets.TrainingData` or a dataset, or None
        to give it later to :meth:`RunPlan.trainer` or :meth:`RunPlan.session`.
    image : str, optional
        The photo the alpha preset fits.
    steps, epochs : int, optional
        Length of the run (giving one drops the preset's other).
    out : str or path, optional
        The checkpoint to write (a preset's default: ``runs/PRESET.safetensors``,
        or the resumed run's).
    resume : str, path or bool, optional
        Continue the run saved in this checkpoint (``True``: in ``out``).
    device, batch_size, lr, patch_size, seed, num_workers, amp, compile
        :class:`~napari_colorize.training.TrainConfig` fields; None keeps the
        preset's, the resumed run's or the config's default. ``lr`` may be text.
    preview_every : int
        Without a preset: steps between validations and previews; checkpoints
        every ``max(50, 5 * preview_every)`` steps.
    own_images : bool
        Without a preset: the data are the user's own images, so a new model
        starts as their lightness lookup table (never below it).

    Returns
    -------
    RunPlan

    Raises
    ------
    ValueError
        A choice that cannot run, with what to give instead.
    """
    lr = _number(lr, "learning rate")
    if preset is not None:
        return _plan_preset(
            preset, data=data, image=image, resume=resume, epochs=epochs, max_steps=steps,
            out=out, device=device, batch_size=batch_size, lr=lr, seed=seed,
            patch_size=patch_size, num_workers=num_workers, amp=amp, compile=compile,
        )  # fmt: skip
    from .config import TrainConfig

    model_config = _model_config(model_config)
    arch, init = parse_start(start or "arch:beta")
    if init is None and own_images:
        from .baseline import with_lightness_table

        model_config = with_lightness_table(arch, model_config)
    every = max(0, int(preview_every or 0))
    settings = {
        "arch": arch or "beta", "model_config": model_config if init is None else {},
        "epochs": epochs, "max_steps": steps, "batch_size": batch_size, "lr": lr,
        "patch_size": patch_size, "device": device or "auto", "amp": amp, "seed": seed or 0,
        "num_workers": num_workers, "out": None if out is None else str(out), "compile": compile,
        "checkpoint_every": max(50, 5 * every) if every else None,
    }  # fmt: skip
    config = TrainConfig(**{k: v for k, v in settings.items() if v is not None})
    if resume is True:
        resume = config.out
    plan = RunPlan(
        config, init_checkpoint=init, resume=str(resume) if resume else None,
        preview_every=every,
    )  # fmt: skip
    if data is not None:
        plan.train, plan.val = plan._with_data(data)
    return plan


def _plan_preset(name, *, data, image, resume, **overrides) -> RunPlan:
    base = None
    if resume:
        base = saved_train_config(resume)
        overrides["out"] = overrides["out"] or base.out or resume
    elif overrides["out"] is None:
        overrides["out"] = f"runs/{name}.safetensors"
    config, train, val = preset_run(name, data=data, image=image, config=base, **overrides)
    return RunPlan(
        config, train, val, resume=str(resume) if resume else None, _config_resumed=True
    )
