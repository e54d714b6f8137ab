"""The per-step work of training, kept apart from the loop in :mod:`.trainer`.

The trainer owns the loop (data order, schedule, events, checkpoints, stop and
resume); a *task* owns the networks and what one step does with a batch. A
colorizer trained on a regression loss is :class:`ColorizationTask`; a GAN task
can bring a discriminator and a second optimizer by returning two entries from
:meth:`ColorizationTask.configure_optimizers` and calling
:meth:`StepContext.step` twice in its ``training_step``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..color import net_to_ab, net_to_l
from .losses import make_loss

__all__ = [
    "ColorizationTask",
    "Optim",
    "StepContext",
    "lr_factor",
    "make_optimizer",
    "recalibrate_batchnorm",
]

SCHEDULERS = ("constant", "cosine", "onecycle")
OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")


def lr_factor(step: int, total: int, kind: str, warmup: float = 0.0) -> float:
    """Learning-rate multiplier at ``step`` of ``total`` (a pure function: resumable).

    ``"constant"``: 1 after the warmup. ``"cosine"``: linear warmup over the
    fraction ``warmup`` of the steps, then a cosine to 0. ``"onecycle"``: as
    cosine, but the warmup starts at 1/25 and defaults to 25% of the steps
    (Smith's one-cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR``).
    """
    if kind not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULERS)}")
    total = max(int(total), 1)
    start = 1.0 / 25.0 if kind == "onecycle" else 0.0
    n_warm = round(warmup * total)
    if step < n_warm:
        return start + (1.0 - start) * (step + 1) / n_warm
    if kind == "constant":
        return 1.0
    progress = min(max((step - n_warm) / max(total - n_warm, 1), 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0, fused=None):
    """``adamw`` | ``adam`` | ``rmsprop`` | ``sgd`` (momentum 0.9) over ``params``.

    Parameters
    ----------
    name : str
    params : iterable of tensors or of parameter-group dicts
    lr, weight_decay : float
    fused : bool, optional
        The fused implementation (Adam, AdamW, SGD); None: where torch has it for
        the parameters' device (see :func:`~napari_colorize.training.speed.fused_supported`),
        else torch's default (``foreach`` on GPUs).

    Raises
    ------
    ValueError
        An unknown optimizer, or ``fused=True`` where there is no fused kernel.
    """
    from .speed import fused_supported

    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    params = list(params)
    flat = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    has_fused = name != "rmsprop" and fused_supported(flat)
    if fused and not has_fused:
        device = flat[0].device if flat else "no device"
        where = "" if name == "rmsprop" else f" for parameters on {device}"
        raise ValueError(
            f"torch has no fused {name} optimizer{where}; set fused_optimizer to None "
            "(automatic) or False"
        )
    options = {"fused": True} if (has_fused if fused is None else fused) else {}
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **options)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **options)
    if name == "rmsprop":
        # Keras' RMSprop defaults (the originating project's optimizer): rho 0.9, eps 1e-7.
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay, **options)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, inputs) -> int:
    """Replace the running statistics of ``model``'s BatchNorm layers by exact averages.

    ``inputs`` is an iterable of model inputs (e.g. ``l_net`` batches); each
    batch's mean and variance count equally (cumulative averages, momentum None).
    Returns the number of batches used; with none, or no BatchNorm, nothing changes.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    inputs = list(inputs) if bns else []
    if not inputs:
        return 0
    momenta = [b.momentum for b in bns]
    was_training = model.training
    for b in bns:
        b.reset_running_stats()
        b.momentum = None
    model.train()
    try:
        for x in inputs:
            model(x)
    finally:
        for b, momentum in zip(bns, momenta):
            b.momentum = momentum
        model.train(was_training)
    return len(inputs)


@dataclass
class Optim:
    """One optimizer with its schedule, loss scaler and the parameters it clips."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    params: list
    scaler: torch.amp.GradScaler | None = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        # the saved groups carry their run's implementation flags: keep this run's choice
        flags = [
            {k: g[k] for k in ("fused", "foreach") if k in g} for g in self.optimizer.param_groups
        ]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, chosen in zip(self.optimizer.param_groups, flags):
            group.update(chosen)
            for p in group["params"]:
                _match_param_layout(self.optimizer.state.get(p, {}), p, bool(group.get("fused")))
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


def _match_param_layout(state: dict, param: torch.Tensor, fused: bool) -> None:
    """Give a loaded optimizer state its parameter's strides (and device step for fused).

    Checkpoints store contiguous tensors; a channels-last parameter's moments must
    be channels-last again, since torch's fused CPU kernels read the memory of
    the parameter and its state alike and would mix up the elements otherwise.
    """
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        if value.shape == param.shape and value.stride() != param.stride():
            state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
        elif key == "step" and fused:  # fused kernels keep the step count on the device
            state[key] = value.to(param.device, torch.float32)


class StepContext:
    """What a task's ``training_step`` needs: autocast and ``step(loss, name)``."""

    def __init__(self, device, amp_dtype, optims: dict[str, Optim], grad_clip=None):
        self.device = torch.device(device)
        self.amp_dtype = amp_dtype
        self.optims = optims
        self.grad_clip = grad_clip

    def autocast(self):
        """Mixed precision on CUDA (bf16 or fp16); a no-op elsewhere."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, loss: torch.Tensor, name: str = "model") -> None:
        """Backpropagate ``loss`` and step the optimizer and schedule called ``name``."""
        o = self.optims[name]
        opt = o.optimizer
        if o.scaler is not None:
            o.scaler.scale(loss).backward()
            if self.grad_clip:
                o.scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(o.params, self.grad_clip)
            o.scaler.step(opt)
            o.scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(o.params, self.grad_clip)
            opt.step()
        opt.zero_grad(set_to_none=True)
        o.scheduler.step()


class ColorizationTask:
    """Train a colorizer ``model`` (L -> ab) with one regression loss.

    Parameters
    ----------
    model : torch.nn.Module
        ``forward(l (N,1,H,W)) -> ab (N,2,H,W)``, both scaled as in :mod:`napari_colorize.color`.
    loss : str
        A name from :data:`napari_colorize.training.losses.LOSSES`.
    """

    def __init__(self, model: nn.Module, loss: str = "l1"):
        self.model = model
        self.loss_name = loss
        self.loss_fn = make_loss(loss)

    def modules(self) -> dict[str, nn.Module]:
        """The networks being trained; ``"model"`` is the one saved for inference."""
        return {"model": self.model}

    def configure_optimizers(self, config, total_steps: int) -> dict[str, Optim]:
        """One optimizer per trained network, each with a resumable LR schedule."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = make_optimizer(
            config.optimizer, params, config.lr, config.weight_decay,
            fused=getattr(config, "fused_optimizer", None),
        )  # fmt: skip
        warmup = (
            config.warmup
            if config.warmup is not None
            else (0.25 if config.scheduler == "onecycle" else 0.0)
        )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, total_steps, config.scheduler, warmup)
        )
        return {"model": Optim(opt, sched, params)}

    def bn_recalibration_steps(self, total_steps: int) -> tuple[int, ...]:
        """After which trainer steps ``TrainConfig.bn_recalibrate`` applies: the last one."""
        return (int(total_steps),)

    def model_inputs(self, l_net: torch.Tensor) -> dict:
        """Keyword inputs of the model besides ``l`` (none here), made outside autocast."""
        return {}

    def training_step(self, batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch = (l, ab)``; returns the detached losses."""
        l_net, ab, *_ = batch
        inputs = self.model_inputs(l_net)
        with ctx.autocast():
            pred = self.model(l_net, **inputs)
        loss = self.loss_fn(pred.float(), ab)
        ctx.step(loss, "model")
        return {"loss": loss.detach()}

    @torch.no_grad()
    def validation_step(self, batch) -> dict[str, float]:
        """Batch means of ``loss`` and ``delta_e`` (mean CIE76 ab error, Lab units)."""
        l_net, ab, *_ = batch
        pred = self.model(l_net, **self.model_inputs(l_net)).float()
        delta_e = torch.sqrt(((net_to_ab(pred) - net_to_ab(ab)) ** 2).sum(1)).mean()
        return {"loss": float(self.loss_fn(pred, ab)), "delta_e": float(delta_e)}

    @torch.no_grad()
    def preview(self, l_net: torch.Tensor) -> np.ndarray:
        """Colorize one ``l`` (1,1,H,W) with the current weights: RGB uint8 (H, W, 3)."""
        from ..color import l_ab_to_rgb

        ab = net_to_ab(self.model(l_net).float())[0].permute(1, 2, 0).cpu().numpy()
        lightness = net_to_l(l_net.float())[0, 0].cpu().numpy()
        return l_ab_to_rgb(lightness, ab)
