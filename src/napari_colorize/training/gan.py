"""Adversarial training of the ``gan`` colorizer: losses, a NoGAN-style schedule, the task.

:class:`GANTask` follows the task interface of :mod:`.task`: ``modules()`` gives
the generator (``"model"``, the network saved for inference) and the
multi-scale discriminator (``"discriminator"``, saved only in the training
state), ``configure_optimizers`` one optimizer each with its own learning rate,
and ``training_step`` does the discriminator's step, then the generator's.

Schedule (DeOldify's "NoGAN", Antic 2019), in optimizer steps of the trainer:

1. ``generator`` (steps ``[0, G)``): the generator alone, on the reconstruction
   loss (``TrainConfig.loss``, L1 by default; plus an optional perceptual loss
   on a classifier's features), with ``TrainConfig``'s optimizer and one-cycle
   (or other) schedule over these ``G`` steps.
2. ``discriminator`` (steps ``[G, G + D)``): the discriminator learns to tell
   the real ab from the frozen pretrained generator's (eval mode, no gradients).
3. ``adversarial`` (the rest): alternating discriminator and generator steps;
   the generator minimises ``l1_weight * reconstruction + adv_weight * GAN +
   fm_weight * feature matching (+ perceptual)``. Adam with ``betas`` for both,
   separate learning rates (``adv_lr_g``, ``lr_d``: the two time-scale update
   rule of Heusel et al. 2017, as SAGAN uses), constant for the first half of
   the phase and decaying linearly to 0 over the second (pix2pix's policy).
   With ``generator_bn="frozen"`` the generator's BatchNorm statistics are
   recalibrated at the end of phase 1 (``TrainConfig.bn_recalibrate``) and kept
   from then on, so phases 2 and 3 train the network exactly as it is deployed.

The phase is a function of the step count, and the step count is read from the
two learning-rate schedules (each counts its optimizer's steps), which the
trainer saves and restores: a run resumed in any phase continues exactly.

Losses (``GANConfig.gan_loss``), summed over the discriminator scales as in pix2pixHD:

``"lsgan"`` (Mao et al. 2017; pix2pixHD's default)
    D: ``(D(real) - 1)^2`` and ``D(fake)^2``; G: ``(D(fake) - 1)^2``.
``"hinge"`` (SAGAN)
    D: ``relu(1 - D(real))`` and ``relu(1 + D(fake))``; G: ``-D(fake)``.

The discriminator minimises ``(d_real + d_fake) / 2``. Feature matching
(pix2pixHD): the L1 distance between the discriminators' intermediate features
of the real and the generated image, each layer weighted ``4 / n_layers`` and
each scale ``1 / n_scales``; the real features come from a gradient-free pass.

Every step's ``losses`` (the trainer's :class:`~.events.StepEvent`) holds the
terms of what was trained in it: ``g_l1`` (the reconstruction term, named after
``TrainConfig.loss``), ``g_adv``, ``g_fm``, ``g_perceptual`` for the generator,
``d_real``, ``d_fake`` for the discriminator, and ``loss``: the generator's
total (the discriminator's in phase 2). The keys present say the phase:
generator terms only, discriminator terms only, or both.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..hint_sampling import sample_pixel_hints
from .task import ColorizationTask, Optim, lr_factor, make_optimizer

__all__ = [
    "GAN_LOSSES",
    "GENERATOR_BN",
    "PHASES",
    "ClassifierFeatureLoss",
    "GANConfig",
    "GANTask",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
]

GAN_LOSSES = ("lsgan", "hinge")
#: What the generator's BatchNorm layers do after the pretraining (``GANConfig.generator_bn``).
GENERATOR_BN = ("train", "frozen")
#: The schedule's phases, in order.
PHASES = ("generator", "discriminator", "adversarial")


@dataclass
class GANConfig:
    """Options of :class:`GANTask` (``TrainConfig.task_config``).

    Parameters
    ----------
    gan_loss : {"lsgan", "hinge"}
    l1_weight : float
        Weight of the reconstruction loss (``TrainConfig.loss``, L1 by default);
        100 as in pix2pix.
    adv_weight : float
        Weight of the generator's adversarial loss.
    fm_weight : float
        Weight of the feature-matching loss (10 as in pix2pixHD).
    perceptual : str, optional
        A classifier (registered name or checkpoint path of an ``inception``
        model, e.g. ``"inception-punks"``) whose features give a perceptual
        loss (:class:`ClassifierFeatureLoss`); ``None``: none.
    perceptual_weight : float
    pretrain_g_steps, pretrain_d_steps : int, optional
        Lengths of phases 1 and 2 in steps; ``None``: 60% and 10% of the run.
    lr_d : float
        The discriminator's learning rate.
    adv_lr_g : float
        The generator's learning rate in the adversarial phase (phase 1 uses
        ``TrainConfig.lr`` and ``TrainConfig.scheduler``).
    betas : (float, float)
        Adam's betas in the adversarial phase and for the discriminator (pix2pix: 0.5, 0.999).
    discriminator : dict
        Fields of :class:`~napari_colorize.models.discriminator.DiscriminatorConfig`.
    gradient_checkpointing : bool
        Recompute activations in backward (generator and discriminator).
    channels_last : bool, optional
        Use the channels-last memory format; ``None``: on CUDA and on the CPU
        (where oneDNN's convolutions are faster in it: ``gan-punks``
        pretraining runs 9.8 instead of 7.7 steps/s on one thread), not on MPS.
    encoder_init : str, optional
        A classifier (name or path) to initialise the generator's encoder from;
        see :func:`~napari_colorize.models.gan.init_encoder_from_inception`.
    hint_points : float
        For hint-aware generators: mean number of hinted pixels per training image.
    hint_dropout : float
        Fraction of training images that get no hints at all.
    generator_bn : {"train", "frozen"}
        What the generator's BatchNorm layers do after the pretraining. ``"train"``:
        they normalise with batch statistics and update their running ones, as in
        pix2pix. ``"frozen"``: they keep the statistics the pretraining ended with
        (eval mode), so the adversarial phase trains the network exactly as it
        runs at inference (their affine weights still learn).
    """

    gan_loss: str = "lsgan"
    l1_weight: float = 100.0
    adv_weight: float = 1.0
    fm_weight: float = 10.0
    perceptual: str | None = None
    perceptual_weight: float = 10.0
    pretrain_g_steps: int | None = None
    pretrain_d_steps: int | None = None
    lr_d: float = 4e-4
    adv_lr_g: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    discriminator: dict = field(default_factory=dict)
    gradient_checkpointing: bool = False
    channels_last: bool | None = None
    encoder_init: str | None = None
    hint_points: float = 10.0
    hint_dropout: float = 0.1
    generator_bn: str = "train"

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)
        if self.generator_bn not in GENERATOR_BN:
            raise ValueError(
                f"unknown generator_bn {self.generator_bn!r}; "
                f"choose one of {', '.join(GENERATOR_BN)}"
            )
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(
                f"unknown gan_loss {self.gan_loss!r}; choose one of {', '.join(GAN_LOSSES)}"
            )
        for name in ("l1_weight", "adv_weight", "fm_weight", "perceptual_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"GANConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("pretrain_g_steps", "pretrain_d_steps"):
            value = getattr(self, name)
            if value is not None and int(value) < 0:
                raise ValueError(f"GANConfig.{name} must be >= 0 or None, got {value}")
        if not (self.lr_d > 0 and self.adv_lr_g > 0):
            raise ValueError("GANConfig.lr_d and GANConfig.adv_lr_g must be positive")

    @classmethod
    def from_dict(cls, d: dict | None) -> GANConfig:
        """Build from a (JSON) dict; unknown keys are an error that lists the known ones."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown GAN option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


# ---------------------------------------------------------------------- losses


def _score_loss(score: torch.Tensor, target: bool, kind: str, for_generator: bool):
    score = score.float()
    if kind == "lsgan":
        return ((score - 1.0) ** 2).mean() if target else (score**2).mean()
    if for_generator:
        return -score.mean()
    return F.relu(1.0 - score).mean() if target else F.relu(1.0 + score).mean()


def discriminator_loss(real_outs, fake_outs, kind: str = "lsgan"):
    """``(d_real, d_fake)``: the discriminators' losses on real and generated ab.

    ``real_outs``/``fake_outs`` are what
    :class:`~napari_colorize.models.discriminator.MultiScaleDiscriminator` returns;
    each is summed over the scales (the score map is each scale's last output).
    """
    d_real = sum(_score_loss(o[-1], True, kind, False) for o in real_outs)
    d_fake = sum(_score_loss(o[-1], False, kind, False) for o in fake_outs)
    return d_real, d_fake


def generator_adversarial_loss(fake_outs, kind: str = "lsgan") -> torch.Tensor:
    """The generator's adversarial loss, summed over the scales."""
    return sum(_score_loss(o[-1], True, kind, True) for o in fake_outs)


def feature_matching_loss(fake_outs, real_outs) -> torch.Tensor:
    """pix2pixHD's feature-matching loss: L1 between discriminator features.

    Over every scale (weight ``1 / n_scales``) and every layer but the score map
    (weight ``4 / n_layers``); the real features are treated as constants.
    """
    n_scales = len(fake_outs)
    total = fake_outs[0][0].new_zeros((), dtype=torch.float32)
    for fake, real in zip(fake_outs, real_outs):
        n = len(fake) - 1
        for f, r in zip(fake[:-1], real[:-1]):
            total = total + (4.0 / n) / n_scales * F.l1_loss(f.float(), r.detach().float())
    return total


class ClassifierFeatureLoss(nn.Module):
    """Perceptual loss: L1 between a frozen Inception v3's stem features of two colourings.

    The predicted and the true ab are combined with the same L into sRGB and
    passed through the classifier's first blocks (``Conv2d_2b_3x3``,
    ``Conv2d_4a_3x3``, ``Mixed_5b``); the loss is the mean of the three L1
    distances. A classifier that sees colour gets the ImageNet-normalised RGB.
    One trained on gray input (``grayscale=True``, as the project's
    ``inception-punks`` and ``inception-imagenet``) gets each of the R, G and B
    planes as a gray image of its own: its filters then compare the edges and
    textures of every colour plane, which is what depends on ab.
    """

    _LAYERS = ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5b")

    def __init__(self, classifier: nn.Module):
        super().__init__()
        cfg = getattr(classifier, "config", None)
        if cfg is None or not hasattr(classifier, "Conv2d_1a_3x3"):
            raise ValueError("the perceptual loss needs an Inception v3 classifier")
        #: Whether the RGB planes go through the classifier one by one as gray images.
        self.per_plane = bool(cfg.grayscale)
        self.classifier = classifier.eval().requires_grad_(False)

    def train(self, mode: bool = True):  # the classifier stays in eval mode
        return self

    def _features(self, rgb):
        from ..models.inception import IMAGENET_MEAN, IMAGENET_STD

        c = self.classifier
        if self.per_plane:  # (N, 3, H, W) -> (3N, 1, H, W) gray images, as l_to_net scales L
            n, _, h, w = rgb.shape
            x = c.prepare_input(rgb.reshape(n * 3, 1, h, w) * 2.0 - 1.0)
        else:
            mean = rgb.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = rgb.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            x = c.prepare_input((rgb - mean) / std)
        feats = []
        x = c.Conv2d_2b_3x3(c.Conv2d_2a_3x3(c.Conv2d_1a_3x3(x)))
        feats.append(x)
        x = c.Conv2d_4a_3x3(c.Conv2d_3b_1x1(c.maxpool1(x)))
        feats.append(x)
        feats.append(c.Mixed_5b(c.maxpool2(x)))
        return feats

    def forward(self, l_net, ab_pred, ab_true):
        from ..color import lab_to_rgb_torch, net_to_ab, net_to_l

        lightness = net_to_l(l_net.float())
        both = torch.cat([ab_pred.float(), ab_true.float()], 0)
        lab = torch.cat([lightness.repeat(2, 1, 1, 1), net_to_ab(both)], 1)
        rgb = lab_to_rgb_torch(lab).clamp(0, 1)
        n = l_net.shape[0] * (3 if self.per_plane else 1)
        feats = self._features(rgb)
        return sum(F.l1_loss(f[:n].float(), f[n:].detach().float()) for f in feats) / len(feats)


def _load_classifier(name_or_path, device):
    from ..registry import load_model

    model, _ = load_model(str(name_or_path), device=device)
    return model


# ------------------------------------------------------------------------ task


class GANTask(ColorizationTask):
    """Train a ``gan`` generator against multi-scale PatchGAN discriminators (see module docs).

    Parameters
    ----------
    model : torch.nn.Module
        The generator, ``forward(l, hints=None) -> ab``.
    config : TrainConfig
        ``loss`` is the reconstruction loss; ``task_config`` holds the
        :class:`GANConfig` fields.
    """

    def __init__(self, model: nn.Module, config):
        super().__init__(model, getattr(config, "loss", "l1"))
        from ..models.discriminator import DiscriminatorConfig, MultiScaleDiscriminator

        self.gan = GANConfig.from_dict(getattr(config, "task_config", None))
        self.discriminator = MultiScaleDiscriminator(DiscriminatorConfig(**self.gan.discriminator))
        device = next(model.parameters()).device
        self.hints = bool(getattr(getattr(model, "config", None), "hints", False))
        self.encoder_init_report: list[str] = []
        if self.gan.encoder_init:
            from ..models.gan import init_encoder_from_inception

            classifier = _load_classifier(self.gan.encoder_init, device)
            self.encoder_init_report = init_encoder_from_inception(model, classifier)
            if not self.encoder_init_report:
                warnings.warn(
                    f"nothing of {self.gan.encoder_init!r} fits this generator's encoder "
                    "(see init_encoder_from_inception); it starts from random weights",
                    stacklevel=2,
                )
        self.perceptual = (
            ClassifierFeatureLoss(_load_classifier(self.gan.perceptual, device))
            if self.gan.perceptual and self.gan.perceptual_weight > 0
            else None
        )
        if self.gan.gradient_checkpointing:
            for m in (model, self.discriminator):
                if hasattr(m, "set_gradient_checkpointing"):
                    m.set_gradient_checkpointing(True)
        channels_last = self.gan.channels_last
        if channels_last is None:
            channels_last = device.type in ("cuda", "cpu")
        self.channels_last = bool(channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.g_steps = self.d_steps = self.adv_steps = 0
        self._optims: dict[str, Optim] | None = None

    # -- the task interface ---------------------------------------------------------

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def configure_optimizers(self, config, total_steps: int) -> dict[str, Optim]:
        """The generator's optimizer (``TrainConfig``'s) and Adam for the discriminator."""
        total = max(int(total_steps), 1)
        g = self.gan.pretrain_g_steps
        g = round(0.6 * total) if g is None else min(int(g), total)
        d = self.gan.pretrain_d_steps
        d = round(0.1 * total) if d is None else min(int(d), total - g)
        self.g_steps, self.d_steps, self.adv_steps = g, d, total - g - d
        warmup = (
            config.warmup
            if config.warmup is not None
            else (0.25 if config.scheduler == "onecycle" else 0.0)
        )
        adv_g = self.gan.adv_lr_g / config.lr

        def g_factor(s):  # s = generator steps so far
            if s < g:
                return lr_factor(s, g, config.scheduler, warmup)
            return adv_g * self._decay(s - g)

        def d_factor(s):  # s = discriminator steps so far
            return 1.0 if s < d else self._decay(s - d)

        g_params = [p for p in self.model.parameters() if p.requires_grad]
        fused = getattr(config, "fused_optimizer", None)
        g_opt = make_optimizer(
            config.optimizer, g_params, config.lr, config.weight_decay, fused=fused
        )
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        d_opt = make_optimizer("adam", d_params, self.gan.lr_d, fused=fused)
        for group in d_opt.param_groups:
            group["betas"] = self.gan.betas
        self._optims = {
            "model": Optim(g_opt, torch.optim.lr_scheduler.LambdaLR(g_opt, g_factor), g_params),
            "discriminator": Optim(
                d_opt, torch.optim.lr_scheduler.LambdaLR(d_opt, d_factor), d_params
            ),
        }
        return self._optims

    def _decay(self, a: int) -> float:
        """Adversarial phase: 1 for its first half, then linearly to 0 (pix2pix)."""
        half = self.adv_steps / 2.0
        if a < half or half <= 0:
            return 1.0
        return max(0.0, 1.0 - (a - half) / half)

    # -- the schedule ---------------------------------------------------------------

    def steps_done(self, optims: dict[str, Optim] | None = None) -> int:
        """Trainer steps done so far, from the two schedules' step counts."""
        optims = optims or self._optims
        g = optims["model"].scheduler.last_epoch
        d = optims["discriminator"].scheduler.last_epoch
        return g + min(d, self.d_steps)

    def bn_recalibration_steps(self, total_steps: int) -> tuple[int, ...]:
        """The end of the run; with ``generator_bn="frozen"``, the end of the pretraining.

        Frozen statistics are then the precise ones of the pretrained generator,
        and the weights trained against them are not given others afterwards.
        """
        if self.gan.generator_bn == "frozen":
            return (self.g_steps,) if self.g_steps else ()
        return (int(total_steps),)

    def phase_at(self, step: int) -> str:
        """The phase (one of :data:`PHASES`) of trainer step ``step`` (0-based)."""
        if step < self.g_steps:
            return PHASES[0]
        if step < self.g_steps + self.d_steps:
            return PHASES[1]
        return PHASES[2]

    # -- one step -------------------------------------------------------------------

    def _freeze_generator_bn(self) -> None:
        """Put the generator's BatchNorm layers in eval mode (``generator_bn="frozen"``)."""
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()

    def _inputs(self, batch):
        l_net, ab, *_ = batch
        if self.channels_last:
            l_net = l_net.contiguous(memory_format=torch.channels_last)
            ab = ab.contiguous(memory_format=torch.channels_last)
        hints = None
        if self.hints:
            hints = sample_pixel_hints(ab, self.gan.hint_points, self.gan.hint_dropout)
        return l_net, ab, hints

    def _discriminator_step(self, l_net, ab, fake, ctx):
        with ctx.autocast():
            real_outs = self.discriminator(l_net, ab)
            fake_outs = self.discriminator(l_net, fake.detach())
        d_real, d_fake = discriminator_loss(real_outs, fake_outs, self.gan.gan_loss)
        d_total = 0.5 * (d_real + d_fake)
        ctx.step(d_total, "discriminator")
        return {"d_real": d_real.detach(), "d_fake": d_fake.detach(), "d_total": d_total.detach()}

    def _reconstruction(self, l_net, fake, ab):
        rec = self.loss_fn(fake.float(), ab)
        terms = {f"g_{self.loss_name}": rec}
        total = self.gan.l1_weight * rec
        if self.perceptual is not None:
            self.perceptual.to(fake.device)
            perc = self.perceptual(l_net, fake, ab)
            terms["g_perceptual"] = perc
            total = total + self.gan.perceptual_weight * perc
        return total, terms

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One trainer step of the current phase; returns the detached loss terms."""
        optims = ctx.optims if self._optims is None else self._optims
        phase = self.phase_at(self.steps_done(optims))
        l_net, ab, hints = self._inputs(batch)
        g_opt = optims["model"].optimizer

        if phase == "generator":
            with ctx.autocast():
                fake = self.model(l_net, hints) if self.hints else self.model(l_net)
            total, terms = self._reconstruction(l_net, fake, ab)
            ctx.step(total, "model")
            return {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}

        if phase == "discriminator":
            self.model.eval()  # the pretrained generator is frozen: no BN statistics either
            try:
                with torch.no_grad(), ctx.autocast():
                    fake = self.model(l_net, hints) if self.hints else self.model(l_net)
            finally:
                self.model.train()
            out = self._discriminator_step(l_net, ab, fake, ctx)
            return {"loss": out.pop("d_total"), **out}

        # adversarial: the discriminator's step, then the generator's
        for group in g_opt.param_groups:
            if "betas" in group:
                group["betas"] = self.gan.betas
        if self.gan.generator_bn == "frozen":  # again each step: validation resets the modes
            self._freeze_generator_bn()
        with ctx.autocast():
            fake = self.model(l_net, hints) if self.hints else self.model(l_net)
        d_terms = self._discriminator_step(l_net, ab, fake, ctx)
        d_terms.pop("d_total")
        self.discriminator.requires_grad_(False)
        try:
            with ctx.autocast():
                fake_outs = self.discriminator(l_net, fake)
                with torch.no_grad():
                    real_outs = self.discriminator(l_net, ab)
            g_adv = generator_adversarial_loss(fake_outs, self.gan.gan_loss)
            g_fm = feature_matching_loss(fake_outs, real_outs)
            rec_total, terms = self._reconstruction(l_net, fake, ab)
            total = self.gan.adv_weight * g_adv + self.gan.fm_weight * g_fm + rec_total
            ctx.step(total, "model")
        finally:
            self.discriminator.requires_grad_(True)
        return {
            "loss": total.detach(),
            **{k: v.detach() for k, v in terms.items()},
            "g_adv": g_adv.detach(),
            "g_fm": g_fm.detach(),
            **d_terms,
        }
