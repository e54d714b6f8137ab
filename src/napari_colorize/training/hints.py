"""Training hint-aware colorizers: random hints revealed from the truth, as Zhang et al. 2017.

A hint-aware model (``beta`` with ``in_channels=4``, ``full`` with
``beta={"in_channels": 4}``; see :mod:`napari_colorize.models.hint_format` for the format)
learns to follow user colour hints when, during training, it sees hints taken
from the very colours it must predict: each training image gets a geometric
number of hints (:func:`napari_colorize.hint_sampling.hint_counts`, none one time in
eight with the paper's ``p = 1/8``), each the mean ab of a small random patch
(:func:`napari_colorize.hint_sampling.sample_hints`). Without hints it must still
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
``recolor`` (0)
    Share of the images whose one colour region is given another hue and
    hinted (:func:`recolor`): teaches the model that a hint overrides what the
    lightness suggests.
``focus`` (0)
    Share of the hints placed where the model's own prediction (without hints)
    is wrong, in proportion to its error, rather than uniformly.
``prior`` (None)
    A ``beta`` model name or file whose weights start a ``local_hints`` model
    (:func:`load_prior`).
``freeze_prior`` (False)
    Train only the local hint branch of a ``local_hints`` model: without hints
    it then colours exactly as its prior.

The draws use torch's global RNG, which the trainer saves in its
checkpoints, so a resumed run sees the hints an uninterrupted one would have.
Validation draws from a generator seeded by the batch, so its numbers compare
across steps. The ``beta-punks-hints`` preset is ``beta-punks`` (frozen) with a
local hint branch trained this way.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ..color import net_to_ab
from ..hint_sampling import DEFAULT_HINT_P, hint_counts, sample_hints
from ..models.hint_format import model_accepts_hints
from .fusion import FusionTask
from .task import ColorizationTask

__all__ = [
    "TASK",
    "HintColorizationTask",
    "HintFusionTask",
    "HintSampler",
    "hint_task",
]

#: The ``TrainConfig.task`` string that trains with sampled hints.
TASK = "napari_colorize.training.hints:hint_task"
_SAMPLER_OPTIONS = {"hint_p", "max_hints", "hint_radius", "recolor", "focus"}
_OPTIONS = _SAMPLER_OPTIONS | {"prior", "freeze_prior"}
#: Pixels whose true ab lies this close (ab_to_net units) to the picked one are recoloured with it.
_SAME_COLOUR = 2.0 / 128.0


@dataclasses.dataclass
class HintSampler:
    """How training hints are drawn (the ``task_config`` options of this module)."""

    hint_p: float = DEFAULT_HINT_P
    max_hints: int | None = None
    hint_radius: tuple[int, int] = (0, 2)
    recolor: float = 0.0
    focus: float = 0.0

    @classmethod
    def from_config(cls, config) -> HintSampler:
        """From ``TrainConfig.task_config``, ignoring the options of the wrapped task."""
        options = dict(getattr(config, "task_config", None) or {})
        mine = {k: options[k] for k in _SAMPLER_OPTIONS if k in options}
        if "hint_radius" in mine:
            r = mine["hint_radius"]
            mine["hint_radius"] = (int(r), int(r)) if isinstance(r, int) else tuple(r)
        return cls(**mine)

    def __call__(self, ab: torch.Tensor, generator=None, error=None):
        """``(hints, target)`` for a batch of true ``ab`` (N, 2, H, W).

        ``target`` is ``ab`` itself unless ``recolor`` > 0 (see :func:`recolor`).
        ``generator`` None draws from torch's global RNG. ``error`` (N, H, W):
        the model's error without hints, where a ``focus`` share of the hints
        go (in proportion to it).
        """
        counts = hint_counts(ab.shape[0], self.hint_p, generator, self.max_hints)
        weights = None
        if self.focus and error is not None:
            _, h, w = error.shape
            error = error.detach().float().cpu()
            share = error / error.sum((1, 2), keepdim=True).clamp(min=1e-12)
            weights = (1.0 - self.focus) / (h * w) + self.focus * share
        if not self.recolor:
            return sample_hints(ab, counts, generator, self.hint_radius, weights), ab
        target, picked = recolor(ab, self.recolor, generator)
        hints = sample_hints(target, counts, generator, self.hint_radius, weights)
        b, y, x = picked  # the recoloured colour is always hinted at least once
        hints[b, :2, y, x] = target[b, :, y, x].to(hints.dtype)
        hints[b, 2, y, x] = 1.0
        return hints, target


def _regions(ab, images, ys, xs) -> torch.Tensor:
    """Per picked pixel, the 4-connected region of pixels of its colour, ``(k, H, W)`` bool."""
    import torch.nn.functional as F

    sub = ab[images]
    k, _, h, w = sub.shape
    seed = sub[torch.arange(k), :, ys[images], xs[images]]  # (k, 2)
    same = ((sub - seed[:, :, None, None]) ** 2).sum(1, keepdim=True) < _SAME_COLOUR**2
    region = torch.zeros_like(same)
    region[torch.arange(k), 0, ys[images], xs[images]] = True
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], device=ab.device)
    for _ in range(h * w):  # a flood fill: grow by one pixel until it stops
        grown = (F.conv2d(region.float(), cross[None, None], padding=1) > 0) & same
        if torch.equal(grown, region):
            break
        region = grown
    return region[:, 0]


def recolor(ab: torch.Tensor, fraction: float, generator=None):
    """Give one colour of some images another hue: what a user's hint asks for.

    Where colours follow from lightness almost always (CryptoPunks' palette), a
    model trained only on true colours learns to ignore hints. Here a
    ``fraction`` of the images have one colour region (the 4-connected pixels
    whose true ab equals that of a random pixel) given another colour: the same
    chroma turned by 60-300 degrees, or, for a gray, a random colour of
    chroma 15-60. Only the connected region of that colour around the pixel
    changes (a hat, not every pixel of the hat's colour), and the picked
    pixel is always hinted, so the model learns that a hint which disagrees
    with the lightness overrides it over the region it lies in.

    Returns
    -------
    target : torch.Tensor
        The new ab (a copy).
    picked : tuple of torch.Tensor
        ``(image, row, column)`` of the picked pixel of each recoloured image.
    """
    n, _, h, w = ab.shape
    draws = torch.rand(n, 4, generator=generator)  # all drawn, so the RNG use is fixed
    ys = torch.randint(0, h, (n,), generator=generator)
    xs = torch.randint(0, w, (n,), generator=generator)
    chosen = (draws[:, 0] < fraction).nonzero()[:, 0]
    target = ab.clone()
    regions = _regions(ab, chosen, ys, xs)
    for k, i in enumerate(chosen.tolist()):
        c0 = ab[i, :, ys[i], xs[i]]
        same = regions[k]
        radius = float(torch.linalg.vector_norm(c0))
        angle = float(draws[i, 1]) * (4 * math.pi / 3) + math.pi / 3
        if radius < 10.0 / 128.0:  # a gray has no hue to turn
            radius = (15.0 + 45.0 * float(draws[i, 2])) / 128.0
            angle = 2 * math.pi * float(draws[i, 3])
            c1 = torch.tensor([math.cos(angle), math.sin(angle)]) * radius
        else:
            cos, sin = math.cos(angle), math.sin(angle)
            c1 = torch.stack([cos * c0[0] - sin * c0[1], sin * c0[0] + cos * c0[1]]).cpu()
        target[i][:, same] = c1.to(ab.dtype).to(ab.device)[:, None]
    return target, (chosen.to(ab.device), ys[chosen].to(ab.device), xs[chosen].to(ab.device))


def load_prior(model, source) -> None:
    """Copy a trained ``beta`` model's weights into a ``local_hints`` model's U-Net.

    A ``local_hints`` model is that U-Net (seeing L only) plus the hint branch,
    so a model trained without hints is its prior as it is; only the branch
    keeps its fresh weights.

    Parameters
    ----------
    model : BetaColorizer
        With ``local_hints=True``.
    source : str or path
        A registered model name or a checkpoint file of the ``beta`` architecture
        with the same widths.
    """
    from pathlib import Path

    from ..checkpoint import load_checkpoint
    from ..registry import resolve_weights

    path = Path(str(source)).expanduser()
    ckpt = load_checkpoint(path if path.is_file() else resolve_weights(str(source)))
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("hint_branch.")}
    theirs = ckpt.model_state
    wrong = sorted(set(ours) ^ set(theirs)) + sorted(
        k for k in ours if k in theirs and tuple(ours[k].shape) != tuple(theirs[k].shape)
    )
    if ckpt.meta.arch != "beta" or not getattr(model.config, "local_hints", False) or wrong:
        raise ValueError(
            f"the prior {source!r} ({ckpt.meta.arch}) does not fit this model"
            + (f" (keys {wrong[:4]})" if wrong else "")
            + "; a local_hints beta takes the weights of a beta with the same widths "
            "(e.g. prior='beta-punks' for the beta-punks-hints preset)"
        )
    state = {k: v.to(ours[k].dtype) for k, v in theirs.items()}
    model.load_state_dict({**model.state_dict(), **state})


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
        options = dict(getattr(config, "task_config", None) or {})
        self.frozen_prior = bool(options.get("freeze_prior", False))
        if options.get("prior"):
            load_prior(model, options["prior"])
        if self.frozen_prior:
            if not getattr(model.config, "local_hints", False):
                raise ValueError(
                    "freeze_prior trains only the local hint branch: it needs "
                    "model_config={'in_channels': 4, 'local_hints': True}"
                )
            for name, p in model.named_parameters():
                p.requires_grad_(name.startswith("hint_branch."))
        super().__init__(model, getattr(config, "loss", "l1"))
        self.sampler = HintSampler.from_config(config)

    def _hold_prior(self) -> None:
        # a frozen prior keeps its batch-norm statistics (the trainer sets train mode)
        if self.frozen_prior:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def training_step(self, batch, ctx):
        """One optimizer step on ``batch = (l, ab)`` with random hints from ``ab``."""
        self._hold_prior()
        l_net, ab, *_ = batch
        hints, ab = self.sampler(ab, error=self._error(l_net, ab))
        with ctx.autocast():
            pred = self.model(l_net, hints)
        loss = self.loss_fn(pred.float(), ab)
        ctx.step(loss, "model")
        return {"loss": loss.detach()}

    def _error(self, l_net, ab, **kwargs):
        """The model's per-pixel ab error without hints (only for ``focus`` > 0)."""
        if not self.sampler.focus:
            return None
        with torch.no_grad():
            pred = self.model(l_net, **kwargs).float()
        return torch.linalg.vector_norm(pred - ab, dim=1)

    @torch.no_grad()
    def validation_step(self, batch):
        """``loss`` and ``delta_e`` with hints drawn the same way each time for a batch."""
        l_net, ab, *_ = batch
        hints, ab = self.sampler(ab, _validation_generator(ab))
        pred = self.model(l_net, hints).float()
        delta_e = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab)) ** 2).sum(1)).mean()
        return {"loss": float(self.loss_fn(pred, ab)), "delta_e": float(delta_e)}


class HintFusionTask(FusionTask):
    """:class:`~.fusion.FusionTask` (the ``full`` model) trained with sampled hints."""

    def __init__(self, model, config=None):
        _check_model(model)
        options = dict(getattr(config, "task_config", None) or {})
        if options.get("prior") or options.get("freeze_prior"):
            raise ValueError("prior and freeze_prior are for local_hints beta models, not full")
        fusion_options = {k: v for k, v in options.items() if k not in _OPTIONS}
        super().__init__(model, dataclasses.replace(config, task_config=fusion_options))
        self.sampler = HintSampler.from_config(config)

    def training_step(self, batch, ctx):
        """One optimizer step with cached class vectors and random hints."""
        l_net, ab, *_ = batch
        embedding = self.embeddings(l_net)
        error = HintColorizationTask._error(self, l_net, ab, embedding=embedding)
        hints, ab = self.sampler(ab, error=error)
        with ctx.autocast():
            pred = self.model(l_net, hints, embedding=embedding)
        loss = self.loss_fn(pred.float(), ab)
        ctx.step(loss, "model")
        return {"loss": loss.detach()}

    @torch.no_grad()
    def validation_step(self, batch):
        """As :class:`HintColorizationTask`'s, with cached class vectors."""
        l_net, ab, *_ = batch
        hints, ab = self.sampler(ab, _validation_generator(ab))
        pred = self.model(l_net, hints, embedding=self.embeddings(l_net)).float()
        delta_e = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab)) ** 2).sum(1)).mean()
        return {"loss": float(self.loss_fn(pred, ab)), "delta_e": float(delta_e)}


def hint_task(model, config):
    """The task factory of ``TrainConfig.task = TASK``: the model's usual task, with hints.

    ``full`` models get :class:`HintFusionTask`, others :class:`HintColorizationTask`.
    (The ``gan`` architecture brings its own hint sampling in its GAN task: train
    a hint-aware GAN with ``model_config={"hints": True}`` and the default task.)
    """
    from ..models.full import FusionColorizer

    unknown = set(getattr(config, "task_config", None) or {}) - _OPTIONS
    if isinstance(model, FusionColorizer):
        return HintFusionTask(model, config)
    if unknown:
        raise ValueError(
            f"unknown task_config option(s) {sorted(unknown)} for training with hints; "
            f"use {', '.join(sorted(_OPTIONS))}"
        )
    return HintColorizationTask(model, config)
