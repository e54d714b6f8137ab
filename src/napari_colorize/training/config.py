"""The config of a training run: one dataclass, stored in every checkpoint of the run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .task import OPTIMIZERS, SCHEDULERS

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in its checkpoints).

    Parameters
    ----------
    arch : str
        Registered architecture (``"alpha"``, ``"beta"``, ...).
    model_config : dict
        Keyword arguments of the architecture's config dataclass.
    epochs, max_steps : int, optional
        Length of the run; with both, whichever ends first. Neither: 1 epoch.
    batch_size : int
    lr, weight_decay : float
        Peak learning rate and decoupled weight decay.
    optimizer : {"adamw", "adam", "rmsprop", "sgd"}
    scheduler : {"constant", "cosine", "onecycle"}
        See :func:`~napari_colorize.training.task.lr_factor`.
    warmup : float, optional
        Fraction of the steps spent warming up (default 0.25 for onecycle, else 0).
    loss : str
        A name from :data:`~napari_colorize.training.losses.LOSSES`.
    patch_size : int, optional
        Random crop size when the data is given as a spec or an array.
    flips : bool
        Random left-right flips of the training items (spec or array data).
    grad_clip : float, optional
        Clip the gradient norm to this value.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"``, ...
    amp : bool
        Mixed precision on CUDA (bf16 where supported, else fp16 with a loss scaler).
    checkpoint_every, preview_every, val_every : int
        Every that many steps; 0 disables the periodic ones (a checkpoint is
        still written at the end, validation still runs at each epoch end).
    out : str, optional
        The checkpoint file, overwritten atomically each time; ``None`` writes nothing.
    seed : int
        Seeds the weights, the data order and the augmentation.
    num_workers : int
        DataLoader worker processes (0 loads in the training process).
    data : str, optional
        What the model is trained on, for the checkpoint's metadata.
    chroma_size : int, optional
        The working size stored for inference (``extra.chroma_size``). Without
        one, a model trained on patches (``patch_size``) is marked to colorize
        at full resolution (``extra.native_resolution``); the training image or
        patch size is always recorded (``extra.image_size``).
    bn_recalibrate : int
        Re-estimate BatchNorm statistics over this many training batches (see
        :meth:`Trainer.recalibrate_batchnorm`) after the steps the task names
        (``task.bn_recalibration_steps``: the last one, i.e. at the end of a run
        that was not stopped, unless the task says otherwise); 0 keeps the
        running averages.
    task : str, optional
        What one step does: ``"colorization"`` (:class:`ColorizationTask`, one
        regression loss), ``"gan"`` (:class:`~napari_colorize.training.gan.GANTask`)
        or ``"module:factory"`` called as ``factory(model, config)``. ``None``: the
        architecture's usual task (``"gan"`` for the ``gan`` architecture).
    task_config : dict
        Options of the task (for ``"gan"``: the fields of
        :class:`~napari_colorize.training.gan.GANConfig`).
    """

    arch: str = "beta"
    model_config: dict = field(default_factory=dict)
    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "onecycle"
    warmup: float | None = None
    loss: str = "l1"
    patch_size: int | None = None
    flips: bool = True
    grad_clip: float | None = None
    device: str = "auto"
    amp: bool = True
    checkpoint_every: int = 0
    preview_every: int = 0
    val_every: int = 0
    out: str | None = None
    seed: int = 0
    num_workers: int = 0
    data: str | None = None
    chroma_size: int | None = None
    bn_recalibrate: int = 0
    task: str | None = None
    task_config: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.out is not None:
            self.out = str(self.out)
        for name in ("epochs", "max_steps"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; use one of {OPTIMIZERS}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; use one of {SCHEDULERS}")
        from .losses import make_loss

        make_loss(self.loss)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from :meth:`to_dict` output, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
