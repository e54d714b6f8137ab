"""The punks classifier: labels data, classification task, short training, scores, top-k,
plane picking, the ImageNet registry entry and the sha256-prefix download."""

import hashlib

import numpy as np
import pytest
import torch

from napari_colorize import registry, user_models
from napari_colorize.checkpoint import read_metadata, save_checkpoint
from napari_colorize.classify import (
    Classifier,
    ClassScores,
    available_classifiers,
    average_precision,
    classifier_report,
    classify_plane,
    plane_lightness,
)
from napari_colorize.data.labels import PunksLabelsDataset, punks_label_heads
from napari_colorize.data.punks import PUNK_TYPES, PunksSplit
from napari_colorize.errors import DownloadError
from napari_colorize.models.inception import (
    TORCHVISION_FILENAME,
    TORCHVISION_SHA256_PREFIX,
    TORCHVISION_URL,
    InceptionV3,
)
from napari_colorize.registry import PretrainedModel
from napari_colorize.training.classification import (
    TASK,
    ClassificationTask,
    head_losses,
    sqrt_balanced_weights,
)
from napari_colorize.training.task import StepContext
from napari_colorize.training.trainer import TrainConfig, Trainer

#: A classifier small enough for the tests: 1/16 of the channels, 5 types + 3 accessories.
TINY = {
    "in_channels": 1,
    "grayscale": True,
    "width": 0.0625,
    "dropout": 0.0,
    "heads": [["type", "softmax", 5], ["accessories", "sigmoid", 3]],
}
ACCESSORIES = ["earring", "cap", "mole"]


def fake_punks(n=12, seed=0) -> PunksSplit:
    rng = np.random.default_rng(seed)
    types = np.arange(n) % 5
    labels = np.zeros((n, 8), bool)
    labels[np.arange(n), types] = True
    labels[:, 5:] = rng.random((n, 3)) < 0.4
    # make the type visible in gray: a brightness per type
    rgb = np.repeat((40 + 40 * types)[:, None, None, None], 3, axis=-1) * np.ones((1, 24, 24, 1))
    rgb = np.clip(rgb + rng.integers(0, 20, (n, 24, 24, 3)), 0, 255).astype(np.uint8)
    return PunksSplit(
        "train", rgb, np.full((n, 24, 24), 255, np.uint8), labels,
        [*PUNK_TYPES, *ACCESSORIES], np.arange(n),
    )  # fmt: skip


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(user_models, "_user_models", None)
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAPARI_COLORIZE_DATA", str(tmp_path / "data"))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return InceptionV3(registry.build_model("inception", TINY).config).eval()


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    model = registry.build_model("inception", TINY).eval()
    path = tmp_path_factory.mktemp("clf") / "tiny-classifier.safetensors"
    save_checkpoint(
        path, model.state_dict(), arch="inception", config=model.config,
        extra={"class_names": {"type": list(PUNK_TYPES), "accessories": ACCESSORIES}},
    )  # fmt: skip
    return path


# ------------------------------------------------------------------ data and task


def test_labels_dataset_items_and_heads():
    punks = fake_punks()
    data = PunksLabelsDataset("train", range(2, 10), flips=True, seed=1, punks=punks)
    assert len(data) == 8
    l_net, y = data[0]
    assert l_net.shape == (1, 24, 24)
    assert l_net.dtype == torch.float32
    assert y.shape == (8,)
    assert torch.equal(y, torch.from_numpy(punks.labels[2].astype("float32")))
    assert data.type_names == list(PUNK_TYPES)
    with pytest.raises(ValueError, match="first five labels"):
        punks_label_heads(["male", *PUNK_TYPES[:4]])


def test_head_losses_softmax_and_sigmoid():
    heads = (("type", "softmax", 5), ("accessories", "sigmoid", 3))
    targets = torch.tensor([[0, 0, 1, 0, 0, 1, 0, 1.0]])
    right = torch.tensor([[-9, -9, 9, -9, -9, 9, -9, 9.0]])
    wrong = -right
    good, bad = head_losses(right, targets, heads), head_losses(wrong, targets, heads)
    summed = head_losses(wrong, targets, heads, sigmoid_reduction="sum")
    assert summed["accessories"] == pytest.approx(3 * bad["accessories"])
    assert summed["type"] == pytest.approx(bad["type"])
    assert set(good) == {"type", "accessories"}
    assert good["type"] < 1e-3
    assert good["accessories"] < 1e-3
    assert bad["type"] > 5
    assert bad["accessories"] > 5


def test_class_weights_favour_rare_types():
    onehot = np.zeros((100, 5))
    onehot[np.arange(100), [0] * 1 + [1] * 4 + [2] * 0 + [3] * 45 + [4] * 50] = 1
    w = sqrt_balanced_weights(onehot)
    assert w[0] > w[1] > w[3] > w[4]
    assert w[2] == 0.0
    assert float(np.dot(w, onehot.sum(0))) == pytest.approx(100, rel=1e-3)
    full = sqrt_balanced_weights(onehot, 1.0)  # "balanced": each class weighs the same
    assert full[0] * 1 == pytest.approx(full[3] * 45, rel=1e-3)
    heads = (("type", "softmax", 5), ("accessories", "sigmoid", 3))
    logits, targets = torch.zeros(2, 8), torch.zeros(2, 8)
    targets[0, 0] = targets[1, 4] = 1
    logits[0, 4] = 5  # the rare type mistaken for the common one
    plain = head_losses(logits, targets, heads)["type"]
    weighted = head_losses(logits, targets, heads, class_weights={"type": [10, 1, 1, 1, 1]})
    assert weighted["type"] > plain
    with pytest.raises(ValueError, match="class_weights"):
        ClassificationTask(
            registry.build_model("inception", TINY),
            TrainConfig(task_config={"class_weights": "sqrt-balanced"}),
        )


def test_task_step_and_validation_on_tiny_inputs():
    model = registry.build_model("inception", TINY)
    cfg = TrainConfig(arch="inception", model_config=TINY, task=TASK, lr=1e-2)
    task = ClassificationTask(model, cfg)
    optims = task.configure_optimizers(cfg, 10)
    data = PunksLabelsDataset("train", punks=fake_punks())
    l_net = torch.stack([data[i][0] for i in range(4)])
    y = torch.stack([data[i][1] for i in range(4)])
    losses = task.training_step((l_net, y), StepContext("cpu", None, optims))
    assert {"loss", "loss_type", "loss_accessories"} <= set(losses)
    model.eval()
    val = task.validation_step((l_net, y))
    assert set(val) == {"loss", "acc_type", "acc_accessories"}
    assert 0 <= val["acc_type"] <= 1
    with pytest.raises(ValueError, match="unknown task_config"):
        ClassificationTask(model, TrainConfig(task_config={"nope": 1}))
    with pytest.raises(ValueError, match="sigmoid_reduction"):
        ClassificationTask(model, TrainConfig(task_config={"sigmoid_reduction": "max"}))


def test_short_training_run_then_scores(tmp_path):
    punks = fake_punks(20)
    train = PunksLabelsDataset("train", range(15), punks=punks)
    val = PunksLabelsDataset("train", range(15, 20), flips=False, punks=punks)
    out = tmp_path / "clf.safetensors"
    cfg = TrainConfig(
        arch="inception", model_config=TINY, max_steps=3, batch_size=5, lr=3e-3, task=TASK,
        out=str(out), seed=0,
    )  # fmt: skip
    result = Trainer(cfg, train, val).fit()
    assert result.step == 3
    assert {"val_loss", "val_acc_type", "val_acc_accessories"} <= set(result.metrics)
    clf = Classifier.load(out)
    assert clf.heads == (("type", "softmax", 5), ("accessories", "sigmoid", 3))
    assert not clf.model.training
    p = clf.probabilities(np.full((24, 24), 50.0))
    assert p.shape == (1, 8)
    np.testing.assert_allclose(p[0, :5].sum(), 1.0, rtol=1e-5)
    report = classifier_report(clf, punks=punks)
    for key in (
        "type_accuracy",
        "type_balanced_accuracy",
        "accessory_accuracy",
        "accessory_map",
        "accessory_f1_micro",
        "accessory_f1_macro",
        "exact_match",
    ):
        assert 0.0 <= report[key] <= 1.0, key  # fmt: skip
    assert report["n_images"] == 20


def test_average_precision():
    assert average_precision([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert average_precision([0.1, 0.8, 0.9], [True, False, False]) == pytest.approx(1 / 3)
    assert np.isnan(average_precision([0.5], [False]))


# ------------------------------------------------------------------ scores and planes


def test_scores_rows_type_then_accessories(tiny_file):
    clf = Classifier.load(tiny_file)
    scores = clf.scores(np.linspace(0, 100, 24 * 24).reshape(24, 24))
    rows = scores.rows(k=5, k_labels=2)
    assert [r.head for r in rows] == ["type"] * 5 + ["accessories"] * 2
    assert {r.label for r in rows[:5]} == set(PUNK_TYPES)
    assert sum(r.probability for r in rows[:5]) == pytest.approx(1.0, rel=1e-5)
    probs = [r.probability for r in rows[:5]]
    assert probs == sorted(probs, reverse=True)
    assert set(scores.head("accessories")) == set(ACCESSORIES)
    assert ClassScores().rows() == []


def test_imagenet_head_names_and_top_k():
    torch.manual_seed(0)
    model = InceptionV3(width=0.0625, grayscale=True, in_channels=1).eval()
    clf = Classifier(model)
    assert clf.heads == (("classes", "softmax", 1000),)
    assert clf.class_names[0][:2] == ["tench", "goldfish"]
    top = clf.scores(np.full((80, 80), 40.0)).top(3)
    assert len(top) == 3
    assert top[0].probability >= top[2].probability


def test_plane_lightness_picks_the_plane_and_uses_the_range():
    stack = np.zeros((3, 2, 8, 8), np.uint16)
    stack[2, 1] = 1000
    lightness = plane_lightness(stack, ndim=4, plane=(2, 1), value_range=(0, 1000))
    assert lightness.shape == (8, 8)
    np.testing.assert_allclose(lightness, 100.0, atol=1e-3)
    dark = plane_lightness(stack, ndim=4, plane=(0, 0), value_range=(0, 1000))
    np.testing.assert_allclose(dark, 0.0, atol=1e-3)
    rgb = np.zeros((2, 8, 8, 3), np.uint8)
    assert plane_lightness(rgb, ndim=3, rgb=True, plane=(1,)).shape == (8, 8)


def test_classify_plane(tiny_file):
    clf = Classifier.load(tiny_file)
    stack = np.random.default_rng(0).integers(0, 255, (2, 24, 24), dtype=np.uint8)
    got = classify_plane(clf, stack, ndim=3, plane=(1,))
    want = clf.scores(plane_lightness(stack[1], ndim=2))
    np.testing.assert_allclose(got.heads[0][3], want.heads[0][3], rtol=1e-5)


def test_warning_when_the_image_is_unlike_the_training_data(tiny_file):
    """A photo-sized image, odd lightness or an unsure head: a warning, not '100 %'."""
    clf = Classifier.load(tiny_file)
    clf.card = {"image_size": 24, "input": "24x24 images",
                "lightness": {"mean": [32, 66], "std": [10, 31], "levels": [1, 24]}}  # fmt: skip
    # a punk-like image: few flat levels, punk-like mean and spread
    punk = np.full((24, 24), 45.0)
    punk[4:20, 6:18] = 75.0
    punk[8:12, 8:16] = 20.0
    clf.model.predict_proba = lambda x: torch.tensor([[0.96, 0.01, 0.01, 0.01, 0.01, 0, 0, 0]])
    scores = clf.scores(punk)
    assert scores.warning is None
    assert scores.trusted
    photo = np.linspace(0, 100, 64 * 64, dtype=np.float32).reshape(64, 64)
    scores = clf.scores(photo, image_shape=(512, 512))
    assert not scores.trusted
    assert scores.warning.startswith("Unlike the images")
    assert "it is 512x512 px (trained on 24x24 images)" in scores.warning
    assert "it has 101 distinct lightness levels (training images: 1-24)" in scores.warning
    assert "say little about this image" in scores.warning
    # the classifier itself unsure: a flat softmax
    clf.model.predict_proba = lambda x: torch.tensor([[0.3, 0.2, 0.2, 0.15, 0.15, 0, 0, 0]])
    scores = clf.scores(punk)
    assert scores.warning.startswith("tiny-classifier.safetensors is unsure")
    assert "'alien', has 30 %" in scores.reasons[0]


def test_classify_plane_judges_the_full_resolution_size(tiny_file):
    clf = Classifier.load(tiny_file)
    clf.card = {"image_size": 24, "input": "24x24 images"}
    clf.model.predict_proba = lambda x: torch.tensor([[0.96, 0.01, 0.01, 0.01, 0.01, 0, 0, 0]])
    pyramid = [np.zeros((1024, 1024), np.uint8), np.zeros((512, 512), np.uint8)]
    scores = classify_plane(clf, pyramid, ndim=2, multiscale=True)
    assert "it is 1024x1024 px" in scores.warning
    assert classify_plane(clf, np.zeros((24, 24), np.uint8), ndim=2).warning is None


def test_bundled_punks_classifier_warns_on_a_photo():
    if "inception-punks" not in {m["name"] for m in registry.list_models()}:
        pytest.skip("inception-punks is not bundled in this checkout")
    clf = Classifier.load("inception-punks")
    assert clf.card["image_size"] == 24
    photo = (np.random.default_rng(0).random((96, 128)) * 255).astype(np.uint8)
    scores = classify_plane(clf, photo, ndim=2)
    assert "it is 96x128 px (trained on 24x24 images)" in scores.warning
    punk = np.full((24, 24), 110, np.uint8)
    punk[4:20, 6:18] = 200
    punk[8:12, 8:16] = 40
    assert "px (trained" not in (classify_plane(clf, punk, ndim=2).warning or "")


def test_load_refuses_a_colorizer(tmp_path):
    model = registry.build_model("beta", {"widths": [4, 8]})
    path = save_checkpoint(tmp_path / "beta.safetensors", model.state_dict(), arch="beta",
                           config=model.config)  # fmt: skip
    with pytest.raises(ValueError, match="not a classifier"):
        Classifier.load(path)


# ------------------------------------------------------------------ registry


def test_imagenet_entry_and_listing():
    entry = registry.get_model("inception-imagenet")
    assert entry.url == TORCHVISION_URL
    assert entry.filename == TORCHVISION_FILENAME
    assert entry.sha256 is None
    assert entry.sha256_prefix == TORCHVISION_SHA256_PREFIX
    assert entry.extra["class_names"] == "imagenet"
    rows = {c["name"]: c for c in available_classifiers()}
    assert rows["inception-imagenet"]["available"] is False
    assert "downloaded on first use" in rows["inception-imagenet"]["advice"]
    assert all(registry.get_model(n).arch == "inception" for n in rows)


def _serve_pth(root):
    model = tiny_model()
    pth = root / "tiny_inception-abc.pth"
    torch.save(model.state_dict(), pth)
    return model, pth, hashlib.sha256(pth.read_bytes()).hexdigest()


def _register(name, url, filename, prefix):
    registry.register_pretrained(
        PretrainedModel(
            name, "inception", "served locally", source="url", filename=filename,
            url=f"{url}/{filename}", sha256_prefix=prefix, config=dict(TINY),
            convert="napari_colorize.models.inception:convert_torchvision_state_dict",
            extra={"class_names": {"type": list(PUNK_TYPES), "accessories": ACCESSORIES}},
        )
    )  # fmt: skip


def test_prefix_hash_download_is_accepted_and_converted(server):
    root, url, _ = server
    model, pth, digest = _serve_pth(root)
    _register("tiny-prefix", url, pth.name, digest[:8].upper())
    path = registry.resolve_weights("tiny-prefix", progressbar=False)
    assert path.suffix == ".safetensors"
    cached = sorted(p.name for p in registry.cache_dir().iterdir())
    assert cached == [pth.name, "tiny_inception-abc.safetensors"]  # no temporary file left
    clf = Classifier.load("tiny-prefix")
    x = torch.rand(1, 1, 24, 24)
    torch.testing.assert_close(clf.model(x), model(x))
    assert read_metadata(path).extra["source"]["sha256"] == digest


def test_prefix_hash_mismatch_is_refused_and_nothing_kept(server):
    root, url, _ = server
    _, pth, digest = _serve_pth(root)
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    _register("tiny-wrong", url, pth.name, wrong)
    with pytest.raises(DownloadError, match=f"does not start with the published {wrong}"):
        registry.resolve_weights("tiny-wrong", progressbar=False)
    folder = registry.cache_dir()
    assert not folder.exists() or list(folder.iterdir()) == []
