"""The ``full`` colorizer: fusion shapes, the frozen classifier, the task, a short run, presets."""

import numpy as np
import pytest
import torch

from napari_colorize import registry
from napari_colorize.checkpoint import read_metadata, save_checkpoint
from napari_colorize.models.full import (
    PUNKS_CLASSIFIER,
    FusionColorizer,
    FusionConfig,
    punks_classifier_config,
)
from napari_colorize.training.fusion import TASK, FusionTask
from napari_colorize.training.task import StepContext
from napari_colorize.training.trainer import TrainConfig, Trainer, make_task

CLASSIFIER = {
    "in_channels": 1,
    "grayscale": True,
    "width": 0.0625,
    "dropout": 0.0,
    "heads": [["type", "softmax", 5], ["accessories", "sigmoid", 3]],
}
BETA = {"widths": [4, 8]}


def tiny_config(**kw) -> dict:
    return {"beta": BETA, "classifier": CLASSIFIER, "classifier_source": None, **kw}


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    """A (randomly initialised) tiny classifier saved as a checkpoint."""
    torch.manual_seed(1)
    model = registry.build_model("inception", CLASSIFIER)
    path = tmp_path_factory.mktemp("clf") / "tiny-classifier.safetensors"
    save_checkpoint(path, model.state_dict(), arch="inception", config=model.config)
    return path


def ready_model(**kw):
    torch.manual_seed(0)
    model = registry.build_model("full", tiny_config(**kw))
    model.classifier_ready.fill_(1)
    return model


@pytest.fixture(scope="module")
def eval_model():
    """The tiny full model in eval mode, built once: the tests given it only read it."""
    return ready_model().eval()


def test_default_config_matches_the_bundled_classifier():
    cfg = FusionConfig()
    assert cfg.classifier_source == "inception-punks"
    assert cfg.classifier_config() == punks_classifier_config()
    heads = (("type", "softmax", 5), ("accessories", "sigmoid", 87))
    assert punks_classifier_config().heads == heads
    assert PUNKS_CLASSIFIER["width"] == 0.25
    with pytest.raises(ValueError, match="embedding"):
        FusionConfig(embedding="pixels")
    with pytest.raises(ValueError, match=r"FusionConfig\.beta"):
        FusionConfig(beta={"nope": 1})


@pytest.mark.parametrize("size", [(24, 24), (17, 30), (8, 8)])
def test_shapes(size, eval_model):
    model = eval_model
    l_net = torch.rand(2, 1, *size) * 2 - 1
    embedding = model.embed(l_net)
    assert embedding.shape == (2, 8)
    np.testing.assert_allclose(embedding[:, :5].sum(-1).numpy(), 1.0, rtol=1e-5)
    ab = model(l_net)
    assert ab.shape == (2, 2, *size)
    assert ab.abs().max() <= 1
    torch.testing.assert_close(model(l_net, embedding=embedding), ab)
    with pytest.raises(ValueError, match=r"embedding must be \(N, 8\)"):
        model(l_net, embedding=torch.zeros(2, 7))


def test_embedding_changes_the_output_and_other_embeddings(eval_model):
    model = eval_model
    l_net = torch.zeros(1, 1, 16, 16)
    a = model(l_net, embedding=torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]]))
    b = model(l_net, embedding=torch.tensor([[0, 0, 1.0, 0, 0, 1, 1, 1]]))
    assert not torch.allclose(a, b)
    logits = ready_model(embedding="logits").eval()
    assert not torch.allclose(logits.embed(l_net)[:, :5].sum(), torch.tensor(1.0))
    features = ready_model(embedding="features").eval()
    assert features.embedding_size == features.classifier.num_features
    assert features.embed(l_net).shape == (1, features.classifier.num_features)
    assert features(l_net).shape == (1, 2, 16, 16)


def test_frozen_classifier_gets_no_gradient_and_keeps_its_bn_stats():
    model = ready_model()
    cfg = TrainConfig(arch="full", model_config=tiny_config(), lr=1e-2, loss="l1")
    task = FusionTask(model, cfg)
    optims = task.configure_optimizers(cfg, 10)
    optimized = {id(p) for p in optims["model"].params}
    assert not any(id(p) in optimized for p in model.classifier.parameters())
    before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    colorizer_before = {k: v.clone() for k, v in model.colorizer.state_dict().items()}
    model.train()
    assert model.training
    assert not model.classifier.training
    l_net, ab = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 2, 16, 16) * 0.2
    task.training_step((l_net, ab), StepContext("cpu", None, optims))
    assert all(p.grad is None for p in model.classifier.parameters())
    for k, v in model.classifier.state_dict().items():  # weights and BN running stats
        assert torch.equal(v, before[k]), k
    changed = [k for k, v in model.colorizer.state_dict().items()
               if not torch.equal(v, colorizer_before[k])]  # fmt: skip
    assert any("running_mean" in k for k in changed)  # the colorizer's own BN does train
    assert any(k.endswith("weight") for k in changed)


def test_embedding_cache_reuses_classifier_outputs():
    model = ready_model()
    task = FusionTask(model, TrainConfig(arch="full"))
    l_net = torch.rand(3, 1, 16, 16)
    first = task.embeddings(l_net)
    assert (task.hits, task.misses) == (0, 3)
    again = task.embeddings(torch.cat([l_net[1:], l_net.flip(-1)[:1]]))
    assert (task.hits, task.misses) == (2, 4)
    torch.testing.assert_close(again[:2], first[1:])
    model.eval()
    torch.testing.assert_close(first, model.embed(l_net))


def test_task_loads_the_classifier_source(classifier_file):
    torch.manual_seed(5)
    model = registry.build_model("full", tiny_config(classifier_source=str(classifier_file)))
    assert int(model.classifier_ready) == 0
    FusionTask(model, TrainConfig(arch="full"))
    assert int(model.classifier_ready) == 1
    saved = registry.load_model(classifier_file)[0].state_dict()
    for k, v in model.classifier.state_dict().items():
        assert torch.equal(v, saved[k]), k
    # an untrained classifier without a source is refused, naming the fix
    with pytest.raises(ValueError, match="classifier_source"):
        FusionTask(registry.build_model("full", tiny_config()), TrainConfig(arch="full"))
    # a source of another shape is refused, naming the fields
    wider = {**CLASSIFIER, "width": 0.125}
    other = registry.build_model(
        "full", tiny_config(classifier=wider, classifier_source=str(classifier_file))
    )
    with pytest.raises(ValueError, match="width"):
        FusionTask(other, TrainConfig(arch="full"))


def test_short_training_run_and_self_contained_checkpoint(tmp_path, classifier_file):
    rgb = (np.random.default_rng(0).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    out = tmp_path / "full.safetensors"
    config = TrainConfig(
        arch="full", model_config=tiny_config(classifier_source=str(classifier_file)),
        max_steps=3, batch_size=4, out=str(out), seed=0, val_every=0,
    )  # fmt: skip
    trainer = Trainer(config, rgb, rgb[:2])
    result = trainer.fit()
    assert isinstance(trainer.task, FusionTask)  # the architecture's own task
    assert result.step == 3
    assert "val_delta_e" in result.metrics
    assert trainer.task.misses > 0
    meta = read_metadata(out)
    assert meta.arch == "full"
    assert meta.config["classifier_source"] == str(classifier_file)
    loaded, _ = registry.load_model(out)  # the file alone suffices
    assert isinstance(loaded, FusionColorizer)
    assert int(loaded.classifier_ready) == 1
    x = torch.rand(1, 1, 16, 16)
    trainer.model.eval()
    torch.testing.assert_close(loaded(x), trainer.model(x))
    # fine-tuning keeps the classifier of the file (the task does not reload the source)
    task = make_task(loaded, TrainConfig(arch="full"))
    assert isinstance(task, FusionTask)


def test_a_residual_full_model_starts_as_its_beta_prior(tmp_path, classifier_file):
    torch.manual_seed(3)
    beta = registry.build_model("beta", BETA).eval()
    prior = tmp_path / "beta.safetensors"
    save_checkpoint(prior, beta.state_dict(), arch="beta", config=beta.config.to_dict())
    cfg = tiny_config(classifier_source=str(classifier_file), residual=True)
    model = registry.build_model("full", cfg)
    FusionTask(model, TrainConfig(arch="full", task_config={"prior": str(prior)}))
    model.eval()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x), beta(x))  # zero-initialised correction
        model.fusion[1].bias.fill_(0.5)
        assert not torch.allclose(model(x), beta(x))  # trained, the class vector acts
    plain = registry.build_model("full", tiny_config(classifier_source=str(classifier_file)))
    with pytest.raises(ValueError, match="residual"):
        FusionTask(plain, TrainConfig(arch="full", task_config={"prior": str(prior)}))
    wider = registry.build_model("full", {**cfg, "beta": {"widths": [4, 16]}})
    with pytest.raises(ValueError, match="does not fit"):
        FusionTask(wider, TrainConfig(arch="full", task_config={"prior": str(prior)}))


def test_presets_listed_and_fair():
    from napari_colorize.training.presets import get_preset, list_presets

    names = [p["name"] for p in list_presets()]
    assert {"inception-punks", "full-punks"} <= set(names)
    full, beta = get_preset("full-punks").config(), get_preset("beta-punks").config()
    assert full.arch == "full"
    assert full.task == TASK
    assert full.model_config == {"residual": True}
    assert full.task_config == {"prior": "beta-punks"}  # fine-tunes the bundled beta
    same = ("batch_size", "weight_decay", "optimizer", "scheduler", "loss", "seed", "flips")
    assert {k: getattr(full, k) for k in same} == {k: getattr(beta, k) for k in same}
    assert get_preset("inception-punks").config().task.endswith(":ClassificationTask")


def test_a_hint_aware_full_model_trains_with_sampled_hints(tmp_path, classifier_file):
    from napari_colorize.models.hint_format import model_accepts_hints
    from napari_colorize.training.hints import TASK, HintFusionTask

    rgb = (np.random.default_rng(1).random((8, 16, 16, 3)) * 255).astype(np.uint8)
    out = tmp_path / "full-hints.safetensors"
    cfg = tiny_config(classifier_source=str(classifier_file), beta={**BETA, "in_channels": 4})
    config = TrainConfig(
        arch="full", model_config=cfg, max_steps=2, batch_size=4, out=str(out), seed=0,
        val_every=0, task=TASK, task_config={"hint_p": 0.5},
    )  # fmt: skip
    trainer = Trainer(config, rgb, rgb[:2])
    result = trainer.fit()
    assert isinstance(trainer.task, HintFusionTask)
    assert result.step == 2
    loaded, meta = registry.load_model(out)
    assert meta.extra.get("hints") is True  # the file says it takes hints
    assert model_accepts_hints(loaded)
    hints = torch.zeros(1, 3, 16, 16)
    hints[0, :2, 5, 5] = torch.tensor([0.5, -0.5])
    hints[0, 2, 5, 5] = 1.0
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        assert not torch.allclose(loaded(x, hints=hints), loaded(x))  # the hints reach it
