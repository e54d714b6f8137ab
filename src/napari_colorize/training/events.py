"""What :meth:`napari_colorize.training.Trainer.run` yields while it trains.

Plain dataclasses with numbers, strings and numpy arrays only (no tensors), so
that a GUI thread, a progress bar or a log can consume them without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CheckpointEvent",
    "PreviewEvent",
    "StartEvent",
    "StepEvent",
    "TrainEvent",
    "TrainResult",
    "ValidationEvent",
]


@dataclass
class TrainEvent:
    """Base class of all training events; ``step`` counts optimizer steps done so far."""

    step: int


@dataclass
class StartEvent(TrainEvent):
    """Training is about to start (or resume at ``step``).

    ``total_steps`` is the planned number of steps, ``device`` where the work runs,
    ``n_train``/``n_val`` the dataset sizes and ``steps_per_epoch`` the batches per epoch.
    """

    total_steps: int = 0
    steps_per_epoch: int = 0
    device: str = "cpu"
    n_train: int = 0
    n_val: int = 0
    amp: str | None = None


@dataclass
class StepEvent(TrainEvent):
    """One optimizer step done.

    ``loss`` is the total loss, ``losses`` all its terms (and e.g. discriminator
    losses); ``lr`` the learning rate used for this step; ``images_per_s`` a
    running throughput and ``eta_s`` the estimated seconds left.
    """

    epoch: int = 0
    loss: float = float("nan")
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    images_per_s: float = 0.0
    eta_s: float = float("nan")
    total_steps: int = 0


@dataclass
class ValidationEvent(TrainEvent):
    """Validation results: ``metrics`` has ``val_loss`` and ``val_delta_e`` (mean ab error).

    For colour data also ``val_table_loss`` and ``val_table_delta_e``: the same
    for the lightness lookup table of the training data (computed once, see
    :mod:`napari_colorize.training.baseline`), so the two compare directly.
    """

    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class PreviewEvent(TrainEvent):
    """The current model's colorization of a fixed validation (or training) image."""

    rgb: np.ndarray | None = None  # (H, W, 3) uint8
    index: int = 0


@dataclass
class CheckpointEvent(TrainEvent):
    """A checkpoint was written (atomically) at ``path``; ``final`` for the last one."""

    path: str = ""
    final: bool = False


@dataclass
class TrainResult(TrainEvent):
    """The outcome of a run: yielded as the last event and returned by ``run()``.

    ``stopped`` is True when a stop was requested before the planned end;
    ``metrics`` holds the last validation metrics (empty without validation data)
    and ``loss`` the mean training loss of the last logged steps. ``trained`` is
    the number of steps this run took: 0 when a resumed run had already reached
    its length (then nothing is written and ``path`` is None).
    """

    epoch: int = 0
    path: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")
    stopped: bool = False
    elapsed_s: float = 0.0
    total_steps: int = 0
    trained: int = 0
