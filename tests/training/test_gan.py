"""The GAN task (training/gan.py): losses, an adversarial step, the schedule in the Trainer."""

import dataclasses

import numpy as np
import pytest
import torch

from napari_colorize.hint_sampling import sample_pixel_hints
from napari_colorize.models.discriminator import DiscriminatorConfig, MultiScaleDiscriminator
from napari_colorize.models.gan import UNetColorizer, UNetConfig
from napari_colorize.training.events import StepEvent
from napari_colorize.training.gan import (
    PHASES,
    GANConfig,
    GANTask,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from napari_colorize.training.task import StepContext
from napari_colorize.training.trainer import TrainConfig, Trainer, make_task

TINY_G = {"widths": [8, 16], "stem": 4, "attention": [1]}
TINY_D = {"width": 4, "n_layers": 2}


# tiny convs on a shared 2-core machine: a second thread only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(tmp_path=None, **task):
    return TrainConfig(
        arch="gan", model_config=TINY_G, max_steps=7, batch_size=4, lr=1e-3, device="cpu",
        task_config={"pretrain_g_steps": 2, "pretrain_d_steps": 2, "discriminator": TINY_D,
                     **task},
        out=None if tmp_path is None else str(tmp_path / "gan.safetensors"),
    )  # fmt: skip


def _data(n=8, size=12):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_feature_matching_is_zero_for_identical_features_and_positive_otherwise():
    d = MultiScaleDiscriminator(DiscriminatorConfig(width=4, n_layers=2))
    l_net, ab = torch.rand(2, 1, 16, 16), torch.rand(2, 2, 16, 16) - 0.5
    real = d(l_net, ab)
    assert feature_matching_loss(real, real).item() == 0.0
    fake = d(l_net, ab + 0.3)
    loss = feature_matching_loss(fake, real)
    assert loss.item() > 0
    loss.backward()  # differentiable w.r.t. the fake side
    # pix2pixHD weights: one layer of one scale off by c contributes c * 4 / n_layers / n_scales
    feats = [[torch.zeros(1, 2, 2, 2) for _ in range(4)] for _ in range(2)]
    off = [[f.clone() for f in s] for s in feats]
    off[0][1] += 1.0
    assert feature_matching_loss(off, feats).item() == pytest.approx(4 / 3 / 2)


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_gan_losses(kind):
    good = [[torch.ones(1, 1, 2, 2)]] * 3
    bad = [[(0.0 if kind == "lsgan" else -1.0) * torch.ones(1, 1, 2, 2)]] * 3
    d_real, d_fake = discriminator_loss(good, bad, kind)  # a perfect discriminator
    assert d_real.item() == 0.0
    assert d_fake.item() == 0.0
    d_real, d_fake = discriminator_loss(bad, good, kind)
    assert d_real.item() > 0
    assert d_fake.item() > 0
    assert generator_adversarial_loss(good, kind) < generator_adversarial_loss(bad, kind)


def test_sample_pixel_hints_follow_the_hint_format():
    torch.manual_seed(0)
    ab = torch.rand(64, 2, 8, 8) - 0.5
    hints = sample_pixel_hints(ab, mean_points=5, dropout=0.25)
    assert hints.shape == (64, 3, 8, 8)
    mask = hints[:, 2:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(hints[:, :2], ab * mask)
    assert 1 < mask.sum((1, 2, 3)).mean() < 10


def _task(**gan):
    torch.manual_seed(0)
    model = UNetColorizer(UNetConfig(**TINY_G))
    cfg = _config(**gan)
    task = make_task(model, cfg)
    optims = task.configure_optimizers(cfg, total_steps=cfg.max_steps)
    return task, StepContext("cpu", None, optims)


@pytest.mark.parametrize("kind", ["lsgan", "hinge"])
def test_one_adversarial_step_changes_both_networks(kind):
    task, ctx = _task(pretrain_g_steps=0, pretrain_d_steps=0, gan_loss=kind)
    assert isinstance(task, GANTask)
    assert task.phase_at(task.steps_done()) == "adversarial"
    g0 = {k: v.clone() for k, v in task.model.state_dict().items()}
    d0 = {k: v.clone() for k, v in task.discriminator.state_dict().items()}
    l_net, ab = torch.rand(4, 1, 12, 12) * 2 - 1, (torch.rand(4, 2, 12, 12) - 0.5) * 0.5
    losses = task.training_step((l_net, ab), ctx)
    assert {"loss", "g_l1", "g_adv", "g_fm", "d_real", "d_fake"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    g_changed = [k for k, v in task.model.state_dict().items() if not torch.equal(v, g0[k])]
    d_changed = [
        k for k, v in task.discriminator.state_dict().items() if not torch.equal(v, d0[k])
    ]
    assert any(k.endswith("weight.original") for k in g_changed)
    assert any(k.endswith("weight.original") for k in d_changed)
    # the generator's step must not leave gradients in the discriminator (and vice versa)
    assert all(p.grad is None for p in task.discriminator.parameters())
    assert all(p.grad is None for p in task.model.parameters())
    assert task.steps_done() == 1


@pytest.mark.parametrize("mode", ["train", "frozen"])
def test_frozen_generator_bn_keeps_the_statistics_and_trains_the_weights(mode):
    task, ctx = _task(pretrain_g_steps=0, pretrain_d_steps=0, generator_bn=mode)
    task.model.train()  # as the trainer leaves it, e.g. after a validation
    g0 = {k: v.clone() for k, v in task.model.state_dict().items()}
    batch = (torch.rand(4, 1, 12, 12) * 2 - 1, (torch.rand(4, 2, 12, 12) - 0.5) * 0.5)
    task.training_step(batch, ctx)
    changed = {k for k, v in task.model.state_dict().items() if not torch.equal(v, g0[k])}
    stats = {k for k in g0 if k.endswith(("running_mean", "running_var"))}
    assert stats, "the tiny generator has BatchNorm layers"
    assert any(k.endswith("weight.original") for k in changed)
    assert (changed & stats == set()) == (mode == "frozen")
    with pytest.raises(ValueError, match="generator_bn"):
        GANConfig(generator_bn="eval")


def test_phases_follow_the_step_count():
    task, ctx = _task(pretrain_g_steps=2, pretrain_d_steps=3)
    assert [task.phase_at(s) for s in range(7)] == [PHASES[0]] * 2 + [PHASES[1]] * 3 + [
        PHASES[2]
    ] * 2
    d0 = {k: v.clone() for k, v in task.discriminator.state_dict().items()}
    batch = (torch.rand(4, 1, 12, 12) * 2 - 1, torch.rand(4, 2, 12, 12) - 0.5)
    keys = []
    for _ in range(7):
        keys.append(set(task.training_step(batch, ctx)) - {"loss"})
    assert keys[0] == {"g_l1"}
    assert keys[2] == {"d_real", "d_fake"}
    assert keys[6] == {"g_l1", "g_adv", "g_fm", "d_real", "d_fake"}
    assert task.steps_done() == 7
    assert any(not torch.equal(v, d0[k]) for k, v in task.discriminator.state_dict().items())


def test_gan_options_are_checked():
    with pytest.raises(ValueError, match="unknown GAN option"):
        GANConfig.from_dict({"l1": 3})
    with pytest.raises(ValueError, match="gan_loss"):
        GANConfig(gan_loss="wgan")
    with pytest.raises(ValueError, match="unknown task"):
        make_task(UNetColorizer(UNetConfig(**TINY_G)), TrainConfig(task="nope"))


def test_hint_aware_generator_trains_with_sampled_hints():
    task, ctx = _task(pretrain_g_steps=0, pretrain_d_steps=0)
    model = UNetColorizer(UNetConfig(**TINY_G, hints=True))
    cfg = _config(pretrain_g_steps=1, pretrain_d_steps=0)
    task = make_task(model, cfg)
    ctx = StepContext("cpu", None, task.configure_optimizers(cfg, 3))
    batch = (torch.rand(4, 1, 12, 12) * 2 - 1, torch.rand(4, 2, 12, 12) - 0.5)
    for _ in range(2):
        losses = task.training_step(batch, ctx)
    assert "g_adv" in losses


def _losses(events):
    return [(e.step, e.losses) for e in events if isinstance(e, StepEvent)]


def test_schedule_end_to_end_with_exact_resume_across_a_phase_boundary(tmp_path):
    data = _data()
    full = _losses(Trainer(_config(), data).run())
    assert [s for s, _ in full] == list(range(1, 8))
    phases = [
        "adversarial" if "g_adv" in v else "discriminator" if "d_real" in v else "generator"
        for _, v in full
    ]
    assert phases == ["generator"] * 2 + ["discriminator"] * 2 + ["adversarial"] * 3

    # stop after step 3 (inside phase 2), resume: crosses into the adversarial phase
    cfg = _config(tmp_path)
    trainer = Trainer(cfg, data)
    first = []
    for event in trainer.run():
        if isinstance(event, StepEvent):
            first.append((event.step, event.losses))
            if event.step == 3:
                trainer.request_stop()
    assert first[-1][0] == 3
    resumed = Trainer.resume(cfg.out, data)
    rest = _losses(resumed.run())
    assert [s for s, _ in first + rest] == list(range(1, 8))
    for (step, want), (_, got) in zip(full, first + rest):
        assert got.keys() == want.keys(), step
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-7), (step, key)

    # the exported checkpoint holds the generator only and loads as a registered model
    from napari_colorize.registry import load_model

    model, meta = load_model(cfg.out)
    assert meta.arch == "gan"
    assert isinstance(model, UNetColorizer)
    assert not any(k.startswith("discriminator") for k in model.state_dict())


def test_frozen_generator_bn_is_recalibrated_once_at_the_end_of_the_pretraining():
    def stats(model):
        return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}

    cfg = dataclasses.replace(_config(generator_bn="frozen"), bn_recalibrate=2)
    trainer = Trainer(cfg, _data())
    seen = {}
    for event in trainer.run():  # a StepEvent comes before that step's recalibration
        if isinstance(event, StepEvent):
            seen[event.step] = stats(trainer.model)
    final = stats(trainer.model)
    assert trainer.task.bn_recalibration_steps(7) == (2,)
    assert any(not torch.equal(seen[2][k], seen[3][k]) for k in final)  # recalibrated
    assert all(torch.equal(seen[3][k], final[k]) for k in final)  # then frozen to the end

    default = Trainer(dataclasses.replace(_config(), bn_recalibrate=2), _data())
    default.fit()
    assert default.task.bn_recalibration_steps(7) == (7,)


@pytest.mark.parametrize("grayscale", [False, True])
def test_perceptual_loss_on_a_colour_or_a_gray_classifier(grayscale):
    from napari_colorize.models.inception import InceptionConfig, InceptionV3
    from napari_colorize.training.gan import ClassifierFeatureLoss

    torch.manual_seed(0)
    classifier = InceptionV3(InceptionConfig(width=0.125, grayscale=grayscale, num_classes=3))
    loss = ClassifierFeatureLoss(classifier)
    assert loss.per_plane is grayscale  # a gray classifier sees R, G and B one by one
    l_net = torch.rand(2, 1, 8, 8) * 2 - 1
    ab = (torch.rand(2, 2, 8, 8) - 0.5) * 0.5
    assert loss(l_net, ab, ab).item() == 0.0
    pred = (ab + 0.2).requires_grad_(True)
    value = loss(l_net, pred, ab)
    assert value.item() > 0
    value.backward()
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.classifier.parameters())


def test_gan_task_trains_with_the_perceptual_loss(tmp_path):
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.models.inception import InceptionConfig, InceptionV3

    torch.manual_seed(0)
    config = InceptionConfig(width=0.125, grayscale=True, num_classes=3)
    path = tmp_path / "tiny-classifier.safetensors"
    save_checkpoint(path, InceptionV3(config).state_dict(), arch="inception",
                    config=dataclasses.asdict(config))  # fmt: skip
    task, ctx = _task(perceptual=str(path), pretrain_g_steps=1, pretrain_d_steps=0)
    batch = (torch.rand(2, 1, 12, 12) * 2 - 1, (torch.rand(2, 2, 12, 12) - 0.5) * 0.5)
    for phase in ("generator", "adversarial"):
        assert task.phase_at(task.steps_done()) == phase
        losses = task.training_step(batch, ctx)
        assert losses["g_perceptual"] > 0


def test_gan_punks_preset_is_consistent():
    from napari_colorize.registry import build_model
    from napari_colorize.training.presets import GAN_PUNKS_STEPS, get_preset

    config = get_preset("gan-punks").config()
    gan = GANConfig.from_dict(config.task_config)
    assert config.max_steps == sum(GAN_PUNKS_STEPS.values())
    assert gan.pretrain_g_steps + gan.pretrain_d_steps < config.max_steps
    model = build_model(config.arch, config.model_config)
    assert isinstance(model, UNetColorizer)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000  # a few MB bundled
