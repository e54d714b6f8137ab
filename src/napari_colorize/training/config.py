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
    amp : bool or str
        Mixed precision. True (or ``"auto"``): on CUDA, bf16 where supported,
        else fp16 with a loss scaler; float32 elsewhere. False (or ``"fp32"``):
        float32. ``"bf16"``: bf16 autocast on any device, the CPU included (an
        opt-in: 1.5-1.8x faster on a CPU with AMX, in other rounding). ``"fp16"``:
        CUDA or MPS. See :func:`~napari_colorize.training.speed.amp_dtype`.
    channels_last : bool, optional
        Train in the channels-last memory format; None: on CUDA and on the CPU,
        where it was measured faster (see "Training throughput" in
        ``docs/benchmarks.md``), not on MPS.
    fused_optimizer : bool, optional
        The fused implementation of Adam, AdamW or SGD; None: where torch has it
        for the device (CUDA, the CPU, MPS in recent torch). The same updates up
        to float rounding.
    compile : bool
        ``torch.compile`` the trained networks (in place: checkpoints keep plain
        state-dict keys). The first step then takes about a minute on a CPU;
        needs a C++ compiler on the CPU and Triton on CUDA.
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
    amp: bool | str = True
    channels_last: bool | None = None
    fused_optimizer: bool | None = None
    compile: bool = False
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
        from .speed import AMP_CHOICES

        if self.amp not in AMP_CHOICES:
            raise ValueError(
                f"amp must be True, False or one of 'auto', 'fp32', 'bf16', 'fp16'; "
                f"got {self.amp!r}"
            )
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
