"""The training loop: a generator of events that can be stopped and resumed exactly.

Usage::

    trainer = Trainer(TrainConfig(arch="beta", max_steps=1000, out="beta.safetensors"),
                      "punks:train")
    for event in trainer.run():        # StepEvent, ValidationEvent, ..., TrainResult
        ...                             # trainer.request_stop() ends it between steps

The loop is flat on purpose; what a step does lives in a task
(:class:`~napari_colorize.training.task.ColorizationTask`).

Exact resumption rests on four things saved in every checkpoint: the weights,
each optimizer's state and schedule (and loss scaler), the RNG states (torch,
numpy, python, CUDA), and the position in the data. The order of the items in
epoch ``e`` is a permutation drawn from ``(seed, e)`` alone and the datasets'
crops and flips depend only on ``(seed, epoch, index)``, so a run resumed at
step ``s`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .events import (
    CheckpointEvent,
    PreviewEvent,
    StartEvent,
    StepEvent,
    TrainEvent,
    TrainResult,
    ValidationEvent,
)
from .randomness import epoch_order, rng_state, seed_everything, set_rng_state
from .task import ColorizationTask

__all__ = ["TrainConfig", "Trainer", "export_model"]


# ------------------------------------------------------------------ helpers

#: Task names of :attr:`TrainConfig.task` -> ``"module:factory"`` (imported when used).
TASKS = {
    "colorization": "napari_colorize.training.task:ColorizationTask",
    "gan": "napari_colorize.training.gan:GANTask",
    "full": "napari_colorize.training.fusion:FusionTask",
    "classification": "napari_colorize.training.classification:ClassificationTask",
}
#: The task of an architecture when :attr:`TrainConfig.task` is None (else "colorization").
ARCH_TASKS = {"gan": "gan", "full": "full", "inception": "classification"}


def make_task(model, config: TrainConfig):
    """The task ``config.task`` names (see :class:`TrainConfig`) for ``model``."""
    import importlib

    name = config.task or ARCH_TASKS.get(config.arch, "colorization")
    if name == "colorization":
        return ColorizationTask(model, config.loss)
    spec = TASKS.get(name, name)
    if ":" not in spec:
        raise ValueError(
            f"unknown task {name!r}; use one of {', '.join(TASKS)} or 'module:factory'"
        )
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)(model, config)


def _build_model(arch: str, config: dict):
    from ..registry import build_model

    return build_model(arch, config)


def _as_dataset(data, config: TrainConfig, *, train: bool):
    """A spec string, an RGB array (N,H,W,3) / image (H,W,3), or a Dataset as a Dataset."""
    if data is None:
        return None
    if isinstance(data, (str, Path)):
        from ..data import dataset_from_spec

        return dataset_from_spec(
            str(data), patch_size=config.patch_size, seed=config.seed, flips=train and config.flips
        )
    if isinstance(data, np.ndarray) or (
        isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray)
    ):
        from ..data import ArrayDataset

        flips = train and config.flips
        return ArrayDataset(data, patch_size=config.patch_size, seed=config.seed, flips=flips)
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise ValueError(
            f"training data must be a dataset spec such as 'punks:train', an RGB array "
            f"(N, H, W, 3) or a torch Dataset yielding (l_net, ab_net); got {type(data).__name__}"
        )
    return data


def _item_size(dataset) -> int | None:
    """Longest side of the first training item: the image or patch size trained at."""
    try:
        return int(max(np.shape(dataset[0][0])[-2:]))
    except Exception:  # an unusual dataset: the size is only recorded, never needed
        return None


def _size_extra(config: TrainConfig, image_size: int | None) -> dict:
    """``extra`` entries saying at what size a model colorizes (see :mod:`napari_colorize.cards`).

    ``image_size``: the training image or patch size. ``native_resolution``: random
    crops of the images at their own resolution, with no working size: such a
    model colorizes at full resolution, tiled.
    """
    if not image_size:
        return {}
    patch = config.patch_size
    patch = max(patch) if isinstance(patch, (tuple, list)) else patch
    native = bool(patch) and not config.chroma_size and int(patch) == image_size
    return {"image_size": int(image_size), **({"native_resolution": True} if native else {})}


def _describe_data(data) -> str | None:
    if isinstance(data, (str, Path)):
        return str(data)
    spec = getattr(data, "spec", None)
    return spec if isinstance(spec, str) else None


def _collate(items):
    parts = [[torch.as_tensor(x) for x in part] for part in zip(*items)]
    shapes = sorted({tuple(t.shape) for t in parts[0]})
    if len(shapes) > 1:
        raise ValueError(
            f"the images of one batch differ in size ({', '.join(map(str, shapes[:3]))}); "
            "set a patch size (patch_size / --patch-size) so that all are cropped alike"
        )
    return tuple(torch.stack(part) for part in parts)


# ------------------------------------------------------------------ the trainer


class Trainer:
    """Train a colorizer; :meth:`run` is a generator of :mod:`.events`.

    Parameters
    ----------
    config : TrainConfig
    train_data : str, numpy.ndarray or torch.utils.data.Dataset
        A spec (``"punks:train"``, ``"folder:PATH"``, an image path), an RGB array
        ``(N, H, W, 3)``, or a dataset yielding ``(l_net (1,h,w), ab_net (2,h,w), ...)``.
        Datasets with ``set_epoch(epoch)`` get it called before each epoch.
    val_data : same kinds, optional
        Validated every ``val_every`` steps and at the end of each epoch.
    init_checkpoint : str or path, optional
        Start from these weights (a checkpoint file or registered model name),
        whose architecture and config then replace ``config.arch``/``model_config``.
    resume : str or path, optional
        Continue the run saved in this checkpoint exactly where it stopped.
    task_factory : callable, optional
        ``task_factory(model, config) -> task``; default :class:`ColorizationTask`.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_data,
        val_data=None,
        init_checkpoint=None,
        *,
        resume=None,
        task_factory=None,
    ):
        self.config = config
        self._train_data = train_data
        self._val_data = val_data
        self.init_checkpoint = init_checkpoint
        self.resume_path = resume
        self.task_factory = task_factory or make_task
        self._stop = False
        self.step = 0
        self.task = None
        self.last_metrics: dict[str, float] = {}
        self.table = None
        self._table_metrics: dict[str, float] | None = None

    @classmethod
    def resume(cls, path, train_data, val_data=None, **overrides) -> Trainer:
        """A trainer that continues the run saved in ``path``, with its saved config.

        ``overrides`` replace fields of the saved :class:`TrainConfig` (e.g.
        ``max_steps`` to train longer, ``device``, ``out``).
        """
        from ..checkpoint import load_checkpoint
        from ..errors import CheckpointError

        meta = load_checkpoint(path).training_meta
        if not meta or "train_config" not in meta:
            raise CheckpointError(
                f"{path} holds no training state (it was exported for inference); "
                "fine-tune from it with init_checkpoint instead of resuming"
            )
        config = TrainConfig.from_dict({**meta["train_config"], **overrides})
        return cls(config, train_data, val_data, resume=path)

    def request_stop(self) -> None:
        """Ask the run to end after the current step; it then writes a final checkpoint."""
        self._stop = True

    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def model(self):
        """The model being trained (the inference network); available once :meth:`run` started."""
        return None if self.task is None else self.task.modules()["model"]

    def fit(self) -> TrainResult:
        """Run to the end, ignoring the events; returns the :class:`TrainResult`."""
        result = None
        for event in self.run():
            if isinstance(event, TrainResult):
                result = event
        return result

    # -- setup ------------------------------------------------------------------------

    def _setup(self) -> None:
        from ..checkpoint import load_checkpoint, load_state_into
        from ..devices import resolve_device
        from .speed import amp_dtype, check_compile

        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.amp_dtype = amp_dtype(cfg.amp, self.device)  # a precision it cannot run: now
        if cfg.compile:
            check_compile(self.device)
        resumed = load_checkpoint(self.resume_path) if self.resume_path else None
        init = None
        if resumed is not None:
            cfg.arch, cfg.model_config = resumed.meta.arch, dict(resumed.meta.config)
        elif self.init_checkpoint is not None:
            init = self._load_init(self.init_checkpoint)
            cfg.arch, cfg.model_config = init.meta.arch, dict(init.meta.config)

        self.train_set = _as_dataset(self._train_data, cfg, train=True)
        self.val_set = _as_dataset(self._val_data, cfg, train=False)
        if cfg.data is None:
            cfg.data = _describe_data(self._train_data)
        self.n_train = len(self.train_set)
        if self.n_train < 1:
            raise ValueError("the training data is empty; give at least one image")
        # before seeding, so that the look at one item leaves every random stream alone
        self.image_size = _item_size(self.train_set)
        self.table = self._fit_table(fresh=resumed is None and init is None)
        self.batch_size = min(cfg.batch_size, self.n_train)
        self.steps_per_epoch = self.n_train // self.batch_size  # drop the ragged last batch
        total = []
        if cfg.epochs is not None:
            total.append(cfg.epochs * self.steps_per_epoch)
        if cfg.max_steps is not None:
            total.append(cfg.max_steps)
        self.total_steps = min(total) if total else self.steps_per_epoch

        seed_everything(cfg.seed)
        model = _build_model(cfg.arch, cfg.model_config)
        if init is not None:
            load_state_into(model, init.model_state, source=self.init_checkpoint, arch=cfg.arch)
        model.to(self.device)
        self.task = self.task_factory(model, cfg)
        for m in self.task.modules().values():
            m.to(self.device)
        self._apply_speed_levers()
        self.optims = self.task.configure_optimizers(cfg, self.total_steps)
        if self.amp_dtype == torch.float16:
            for o in self.optims.values():
                o.scaler = torch.amp.GradScaler(self.device.type)
        from .task import StepContext

        self.ctx = StepContext(self.device, self.amp_dtype, self.optims, cfg.grad_clip)
        self.step = 0
        self.elapsed_before = 0.0
        if resumed is not None:
            self._restore(resumed)
        from .baseline import prepare_table

        # a new model starts as the table; every run trains the full residual
        prepare_table(model, self.table if init is None and resumed is None else None)

    def _apply_speed_levers(self) -> None:
        """Channels-last and ``torch.compile`` for the task's networks (see :mod:`.speed`).

        A task that picks its memory format itself (an attribute ``channels_last``,
        as :class:`~napari_colorize.training.gan.GANTask`) keeps its choice.
        """
        from .speed import compile_modules, wants_channels_last

        own = getattr(self.task, "channels_last", None)
        modules = list(self.task.modules().values())
        if own is None:
            self.channels_last = wants_channels_last(self.config.channels_last, self.device)
            if self.channels_last:
                for m in modules:
                    m.to(memory_format=torch.channels_last)
        else:
            self.channels_last = bool(own)
        if self.config.compile:
            compile_modules(modules)

    def _to_device(self, batch) -> tuple:
        """``batch`` on the training device, in the memory format the networks use."""
        from .speed import move_batch

        return move_batch(batch, self.device, getattr(self, "channels_last", False))

    def _fit_table(self, fresh: bool):
        """The lightness table of the training data: a new model's start, and the baseline."""
        from .baseline import fit_dataset_table, is_colour_dataset, wants_lightness_table

        self._table_metrics = None
        wanted = fresh and wants_lightness_table(self.config.model_config)
        if not (wanted or self.val_set is not None) or not is_colour_dataset(self.train_set):
            return None
        return fit_dataset_table(self.train_set)

    def table_metrics(self) -> dict[str, float]:
        """The lookup table's validation metrics (``val_table_delta_e``, ...), computed once."""
        if self._table_metrics is None:
            from .baseline import table_metrics

            loss_fn = getattr(self.task, "loss_fn", None)
            found = table_metrics(self.table, self.val_set, loss_fn=loss_fn, device=self.device)
            self._table_metrics = {f"val_{k}": v for k, v in found.items()}
        return self._table_metrics

    def _load_init(self, source):
        from ..checkpoint import load_checkpoint

        path = Path(str(source)).expanduser()
        if not path.exists():
            from ..registry import resolve_weights

            path = resolve_weights(str(source))
        return load_checkpoint(path)

    # -- checkpoints ------------------------------------------------------------------

    def _training_state(self, step: int):
        from ..nested_state import flatten_state

        modules = {k: m.state_dict() for k, m in self.task.modules().items() if k != "model"}
        state = {
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "modules": modules,
            "rng": rng_state(),
        }
        tensors, js = flatten_state(state)
        epoch, batch_in_epoch = divmod(step, self.steps_per_epoch)
        meta = {
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "n_train": self.n_train,
            "batch_size": self.batch_size,
            "total_steps": self.total_steps,
            "elapsed_s": self._elapsed(),
            "train_config": self.config.to_dict(),
            "state": js,
        }
        return tensors, meta

    def save(self, path=None, step: int | None = None) -> Path:
        """Write a resumable checkpoint (atomically) to ``path`` (default ``config.out``)."""
        from ..checkpoint import save_checkpoint

        path = Path(path or self.config.out)
        step = self.step if step is None else step
        model = self.model
        tensors, meta = self._training_state(step)
        takes_hints = getattr(model, "accepts_hints", getattr(model.config, "in_channels", 1) > 1)
        extra = {"hints": bool(takes_hints)}
        if self.config.chroma_size:
            extra["chroma_size"] = int(self.config.chroma_size)
        extra.update(_size_extra(self.config, getattr(self, "image_size", None)))
        return save_checkpoint(
            path,
            model.state_dict(),
            arch=self.config.arch,
            config=_config_of(model),
            data=self.config.data,
            metrics=self.last_metrics,
            extra=extra,
            training_state=tensors,
            training_meta=meta,
        )

    def _restore(self, ckpt) -> None:
        from ..checkpoint import load_state_into
        from ..errors import CheckpointError
        from ..nested_state import unflatten_state

        meta = ckpt.training_meta
        if not meta or "state" not in meta:
            raise CheckpointError(
                f"{ckpt.path} holds no training state (it was exported for inference); "
                "fine-tune from it with init_checkpoint instead of resuming"
            )
        if meta["n_train"] != self.n_train or meta["batch_size"] != self.batch_size:
            raise ValueError(
                f"cannot resume {ckpt.path} exactly: it was trained on {meta['n_train']} items "
                f"in batches of {meta['batch_size']}, this run has {self.n_train} items in "
                f"batches of {self.batch_size}; use the same data and batch size"
            )
        load_state_into(self.model, ckpt.model_state, source=ckpt.path, arch=self.config.arch)
        state = unflatten_state(ckpt.training_state, meta["state"])
        for name, m in self.task.modules().items():
            if name != "model":
                m.load_state_dict(state["modules"][name])
        for name, o in self.optims.items():
            o.load_state_dict(state["optims"][name])
        set_rng_state(state["rng"])
        self.step = int(meta["step"])
        self.elapsed_before = float(meta.get("elapsed_s", 0.0))
        self.last_metrics = dict(ckpt.meta.metrics or {})

    # -- data ---------------------------------------------------------------------------

    def _epoch_items(self, epoch: int) -> tuple[np.ndarray, int]:
        """This process's items of ``epoch``, in order, and its batch size."""
        return epoch_order(self.config.seed, epoch, self.n_train), self.batch_size

    def _batches(self, epoch: int, start: int):
        """Batches ``start, start+1, ...`` of ``epoch`` (drop_last), as tuples of tensors."""
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        order, bs = self._epoch_items(epoch)
        index_batches = [
            order[i * bs : (i + 1) * bs].tolist() for i in range(start, self.steps_per_epoch)
        ]
        if self.config.num_workers <= 0:
            for indices in index_batches:
                yield _collate([self.train_set[i] for i in indices])
            return
        # A private generator: the loader must not draw from the global RNG, whose
        # stream has to be the same whether or not the run was resumed.
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        loader = torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=index_batches,
            num_workers=self.config.num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            generator=gen,
        )
        yield from loader

    # -- validation and previews ------------------------------------------------------------

    def _eval_mode(self, training: bool) -> None:
        for m in self.task.modules().values():
            m.train(training)

    def validate(self) -> dict[str, float]:
        """Mean validation metrics (``val_loss``, ``val_delta_e``) over the validation data."""
        if self.val_set is None or len(self.val_set) == 0:
            return {}
        sums, n = self._validation_sums(range(len(self.val_set)), self.batch_size)
        return {f"val_{k}": v / n for k, v in sums.items()}

    def _validation_sums(self, indices, batch_size: int) -> tuple[dict[str, float], int]:
        """Item-weighted sums of the validation metrics over ``indices``, and their count."""
        self._eval_mode(False)
        sums: dict[str, float] = {}
        count = 0
        indices = list(indices)
        try:
            for start in range(0, len(indices), batch_size):
                items = [self.val_set[i] for i in indices[start : start + batch_size]]
                batch = self._to_device(_collate(items))
                with self._eager(), self.ctx.autocast():
                    values = self.task.validation_step(batch)
                k = batch[0].shape[0]
                for key, v in values.items():
                    sums[key] = sums.get(key, 0.0) + float(v) * k
                count += k
        finally:
            self._eval_mode(True)
        return sums, count

    def preview(self, index: int = 0) -> np.ndarray:
        """The current colorization (RGB uint8) of validation (else training) item ``index``."""
        data = self.val_set if self.val_set is not None and len(self.val_set) else self.train_set
        l_net = torch.as_tensor(data[index][0])[None].to(self.device)
        self._eval_mode(False)
        try:
            with self._eager():
                return self.task.preview(l_net)
        finally:
            self._eval_mode(True)

    def recalibrate_batchnorm(self, n_batches: int) -> int:
        """Re-estimate the model's BatchNorm statistics over ``n_batches`` training batches.

        The running averages kept during training follow the last few dozen
        batches, so the eval-mode network drifts with them; an exact average over
        many batches of the final weights ("precise BN") is steadier and scores
        better. The batches are the first of the next epoch's order (reproducible).
        """
        from .task import recalibrate_batchnorm

        epoch = self.step // self.steps_per_epoch
        batches = itertools.islice(self._batches(epoch, 0), int(n_batches))
        with self._eager():
            return recalibrate_batchnorm(self.model, (self._to_device(b)[0] for b in batches))

    def _eager(self):
        """Run compiled networks eagerly (validation, previews, BatchNorm statistics).

        ``compile`` speeds up the training step; other sizes and modes would
        only cost recompilations (and meet more of the compiler's corner cases).
        """
        from .speed import eager

        return eager(self.config.compile)

    # -- the loop -----------------------------------------------------------------------------

    def _training_step(self, batch) -> dict:
        from .memory import out_of_memory_advice
        from .speed import compile_failure

        try:
            with out_of_memory_advice(self):
                return self.task.training_step(self._to_device(batch), self.ctx)
        except Exception as exc:
            failure = compile_failure(exc) if self.config.compile else None
            if failure is None:
                raise
            raise failure from exc

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t_start)

    def run(self) -> Generator[TrainEvent, None, TrainResult]:
        """Train, yielding events; the last (also returned) is a :class:`TrainResult`."""
        from .memory import check_step_memory

        self._t_start = time.perf_counter()
        self._setup()
        cfg = self.config
        if self.resume_path and self.step >= self.total_steps:  # nothing left: keep the file
            result = TrainResult(
                step=self.step, epoch=self.step // self.steps_per_epoch,
                metrics=dict(self.last_metrics), elapsed_s=self.elapsed_before,
                total_steps=self.total_steps,
            )  # fmt: skip
            yield result
            return result
        check_step_memory(self)
        self._t_start = time.perf_counter()
        yield StartEvent(
            step=self.step, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
            device=str(self.device), n_train=self.n_train,
            n_val=0 if self.val_set is None else len(self.val_set),
            amp=None if self.amp_dtype is None else str(self.amp_dtype).replace("torch.", ""),
        )  # fmt: skip
        self._eval_mode(True)
        recalibrate_at = set(self.task.bn_recalibration_steps(self.total_steps))
        at_end_too = self.total_steps in recalibrate_at
        first_step = self.step
        recent: list[float] = []
        t0 = time.perf_counter()
        path = None
        wrote_at = validated_at = -1

        while self.step < self.total_steps and not self._stop:
            epoch, start = divmod(self.step, self.steps_per_epoch)
            for batch in self._batches(epoch, start):
                lr = next(iter(self.optims.values())).lr
                losses = self._training_step(batch)
                self.step += 1
                losses = {k: float(v) for k, v in losses.items()}
                loss = losses.get("loss", next(iter(losses.values())))
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss became {loss} at step {self.step}; lower the "
                        "learning rate (--lr) or use another loss"
                    )
                recent = [*recent, loss][-50:]
                dt = time.perf_counter() - t0
                done = self.step - first_step
                rate = done / dt if dt > 0 else 0.0
                yield StepEvent(
                    step=self.step, epoch=epoch, loss=loss, losses=losses, lr=lr,
                    images_per_s=rate * self.batch_size,
                    eta_s=(self.total_steps - self.step) / rate if rate > 0 else float("nan"),
                    total_steps=self.total_steps,
                )  # fmt: skip
                at_end = self.step >= self.total_steps
                epoch_end = self.step % self.steps_per_epoch == 0
                if cfg.bn_recalibrate and not at_end and self.step in recalibrate_at:
                    self.recalibrate_batchnorm(cfg.bn_recalibrate)
                recalibrating = at_end and cfg.bn_recalibrate and at_end_too  # validated after
                if (
                    self.val_set is not None
                    and not recalibrating
                    and ((cfg.val_every and self.step % cfg.val_every == 0) or epoch_end or at_end)
                ):
                    self.last_metrics = {**self.validate(), **self.table_metrics()}
                    validated_at = self.step
                    yield ValidationEvent(step=self.step, metrics=dict(self.last_metrics))
                if cfg.preview_every and (self.step % cfg.preview_every == 0 or at_end):
                    yield PreviewEvent(step=self.step, rgb=self.preview())
                if cfg.out and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    path = self.save(step=self.step)
                    wrote_at = self.step
                    yield CheckpointEvent(step=self.step, path=str(path), final=at_end)
                if at_end or self._stop:
                    break

        stopped = self.step < self.total_steps
        if not stopped and cfg.bn_recalibrate and at_end_too:
            self.recalibrate_batchnorm(cfg.bn_recalibrate)
            wrote_at = -1
            if self.val_set is not None:
                self.last_metrics = {**self.validate(), **self.table_metrics()}
                validated_at = self.step
                yield ValidationEvent(step=self.step, metrics=dict(self.last_metrics))
        if validated_at == self.step:
            from .baseline import shrink_residual

            validate = lambda: {**self.validate(), **self.table_metrics()}  # noqa: E731
            shrunk = shrink_residual(self.model, self.last_metrics, validate)
            if shrunk is not None:  # worse than the lookup table: less of the residual
                self.last_metrics, wrote_at = shrunk[1], -1
                yield ValidationEvent(step=self.step, metrics=dict(self.last_metrics))
        if cfg.out and wrote_at != self.step:
            path = self.save(step=self.step)
            yield CheckpointEvent(step=self.step, path=str(path), final=True)
        result = TrainResult(
            step=self.step, epoch=self.step // self.steps_per_epoch,
            path=str(path) if path else None, metrics=dict(self.last_metrics),
            loss=float(np.mean(recent)) if recent else float("nan"), stopped=stopped,
            elapsed_s=self._elapsed(), total_steps=self.total_steps,
            trained=self.step - first_step,
        )  # fmt: skip
        yield result
        return result


def _config_of(model) -> dict:
    from ..checkpoint import config_to_dict

    return config_to_dict(getattr(model, "config", None))


def export_model(src, dst, *, dtype=None, metrics=None, data=None, extra=None) -> Path:
    """Write the inference part of checkpoint ``src`` to ``dst``: weights and metadata only.

    Parameters
    ----------
    src, dst : str or path
    dtype : torch.dtype, optional
        E.g. ``torch.float16`` to halve the file; integer buffers are kept as they are.
    metrics, data, extra : optional
        Replace (``metrics``, ``data``) or update (``extra``) the stored metadata.
    """
    from ..checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src)
    state = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
        for k, v in ckpt.model_state.items()
    }
    meta = ckpt.meta
    return save_checkpoint(
        dst,
        state,
        arch=meta.arch,
        config=meta.config,
        data=meta.data if data is None else data,
        metrics=meta.metrics if metrics is None else metrics,
        extra={**(meta.extra or {}), **(extra or {})},
    )
