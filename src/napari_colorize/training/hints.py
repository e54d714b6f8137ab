"""Training hint-aware colorizers: random hints revealed from the truth, as Zhang et al. 2017.

A hint-aware model (``beta`` with ``in_channels=4``, ``full`` with
``beta={"in_channels": 4}``; see :mod:`napari_colorize.hints` for the format)
learns to follow user colour hints when, during training, it sees hints taken
from the very colours it must predict: each training image gets a geometric
number of hints (:func:`napari_colorize.hints.hint_counts`, none one time in
eight with the paper's ``p = 1/8``), each the mean ab of a small random patch
(:func:`napari_colorize.hints.sample_hints`). Without hints it must still
colorize on its own, so one model serves both uses.

``TrainConfig.task = TASK`` selects :func:`hint_task`, which wraps the model's
usual task (:class:`~.task.ColorizationTask`, or :class:`~.fusion.FusionTask`
for ``full``). ``task_config`` options:

``hint_p`` (0.125)
    Parameter of the geometric number of hints per image.
``max_hints`` (None)
    Cap on the hints of one image.
``hint_radius`` ([0, 2])
    Half-width of the hint patches, drawn uniformly per hint (0: one pixel).

The draws use torch's global RNG, which the trainer saves in its
checkpoints, so a resumed run sees the hints an uninterrupted one would have.
Validation draws from a generator seeded by the batch, so its numbers compare
across steps. The ``beta-punks-hints`` preset is ``beta-punks`` with this task.
"""

from __future__ import annotations

import dataclasses

import torch

from ..color import net_to_ab
from ..hints import DEFAULT_HINT_P, hint_counts, model_accepts_hints, sample_hints
from .fusion import FusionTask
from .task import ColorizationTask

__all__ = [
    "TASK",
    "HintColorizationTask",
    "HintFusionTask",
    "HintSampler",
    "beta_punks_hints_config",
    "hint_task",
]

#: The ``TrainConfig.task`` string that trains with sampled hints.
TASK = "napari_colorize.training.hints:hint_task"
_OPTIONS = {"hint_p", "max_hints", "hint_radius"}


@dataclasses.dataclass
class HintSampler:
    """How training hints are drawn (the ``task_config`` options of this module)."""

    hint_p: float = DEFAULT_HINT_P
    max_hints: int | None = None
    hint_radius: tuple[int, int] = (0, 2)

    @classmethod
    def from_config(cls, config) -> HintSampler:
        """From ``TrainConfig.task_config``, ignoring the options of the wrapped task."""
        options = dict(getattr(config, "task_config", None) or {})
        mine = {k: options[k] for k in _OPTIONS if k in options}
        if "hint_radius" in mine:
            r = mine["hint_radius"]
            mine["hint_radius"] = (int(r), int(r)) if isinstance(r, int) else tuple(r)
        return cls(**mine)

    def __call__(self, ab: torch.Tensor, generator=None) -> torch.Tensor:
        """Hints for a batch of true ``ab`` (N, 2, H, W); ``generator`` None: the global RNG."""
        counts = hint_counts(ab.shape[0], self.hint_p, generator, self.max_hints)
        return sample_hints(ab, counts, generator, self.hint_radius)


def _check_model(model) -> None:
    if not model_accepts_hints(model):
        raise ValueError(
            f"training with hints needs a hint-aware model, but this {type(model).__name__} "
            "takes none; set model_config={'in_channels': 4} (beta), "
            "{'beta': {'in_channels': 4}} (full) or {'hints': True} (gan)"
        )


def _validation_generator(ab: torch.Tensor) -> torch.Generator:
    # the same hints for the same batch at every validation
    seed = int(torch.round(ab.detach().float().abs().sum() * 1000).item()) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class HintColorizationTask(ColorizationTask):
    """:class:`ColorizationTask` whose model sees hints sampled from each batch's truth.

    Parameters
    ----------
    model : torch.nn.Module
        A hint-aware colorizer: ``forward(l, hints) -> ab``.
    config : TrainConfig, optional
        ``loss`` and ``task_config`` (see the module docstring).
    """

    def __init__(self, model, config=None):
        _check_model(model)
        super().__init__(model, getattr(config, "loss", "l1"))
        self.sampler = HintSampler.from_config(config)

    def training_step(self, batch, ctx):
        """One optimizer step on ``batch = (l, ab)`` with random hints from ``ab``."""
        l_net, ab, *_ = batch
        hints = self.sampler(ab)
        with ctx.autocast():
            pred = self.model(l_net, hints)
        loss = self.loss_fn(pred.float(), ab)
        ctx.step(loss, "model")
        return {"loss": loss.detach()}

    @torch.no_grad()
    def validation_step(self, batch):
        """``loss`` and ``delta_e`` with hints drawn the same way each time for a batch."""
        l_net, ab, *_ = batch
        pred = self.model(l_net, self.sampler(ab, _validation_generator(ab))).float()
        delta_e = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab)) ** 2).sum(1)).mean()
        return {"loss": float(self.loss_fn(pred, ab)), "delta_e": float(delta_e)}


class HintFusionTask(FusionTask):
    """:class:`~.fusion.FusionTask` (the ``full`` model) trained with sampled hints."""

    def __init__(self, model, config=None):
        _check_model(model)
        options = dict(getattr(config, "task_config", None) or {})
        fusion_options = {k: v for k, v in options.items() if k not in _OPTIONS}
        super().__init__(model, dataclasses.replace(config, task_config=fusion_options))
        self.sampler = HintSampler.from_config(config)

    def training_step(self, batch, ctx):
        """One optimizer step with cached class vectors and random hints."""
        l_net, ab, *_ = batch
        embedding = self.embeddings(l_net)
        hints = self.sampler(ab)
        with ctx.autocast():
            pred = self.model(l_net, hints, embedding=embedding)
        loss = self.loss_fn(pred.float(), ab)
        ctx.step(loss, "model")
        return {"loss": loss.detach()}

    @torch.no_grad()
    def validation_step(self, batch):
        """As :class:`HintColorizationTask`'s, with cached class vectors."""
        l_net, ab, *_ = batch
        hints = self.sampler(ab, _validation_generator(ab))
        pred = self.model(l_net, hints, embedding=self.embeddings(l_net)).float()
        delta_e = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab)) ** 2).sum(1)).mean()
        return {"loss": float(self.loss_fn(pred, ab)), "delta_e": float(delta_e)}


def hint_task(model, config):
    """The task factory of ``TrainConfig.task = TASK``: the model's usual task, with hints.

    ``full`` models get :class:`HintFusionTask`, others :class:`HintColorizationTask`.
    (The ``gan`` architecture brings its own hint sampling in its GAN task: train
    a hint-aware GAN with ``model_config={"hints": True}`` and the default task.)
    """
    from ..models.fusion import FusionColorizer

    unknown = set(getattr(config, "task_config", None) or {}) - _OPTIONS
    if isinstance(model, FusionColorizer):
        return HintFusionTask(model, config)
    if unknown:
        raise ValueError(
            f"unknown task_config option(s) {sorted(unknown)} for training with hints; "
            f"use {', '.join(sorted(_OPTIONS))}"
        )
    return HintColorizationTask(model, config)


def beta_punks_hints_config():
    """The ``beta-punks-hints`` preset: ``beta-punks`` with 3 hint channels and sampled hints.

    Shorter than ``beta-punks`` (15 epochs, about 14 CPU minutes at one thread)
    so that it is reproducible on a laptop; the data, split, loss and schedule
    are the same.
    """
    from .presets import get_preset

    base = get_preset("beta-punks").config()
    return dataclasses.replace(
        base, model_config={"in_channels": 4}, epochs=15, task=TASK,
        task_config={"hint_p": DEFAULT_HINT_P, "hint_radius": [0, 2]},
        out="runs/beta-punks-hints.safetensors",
    )  # fmt: skip
