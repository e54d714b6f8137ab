"""The Class probabilities widget, opened through the manifest, with a tiny classifier."""

import numpy as np
import pytest

from napari_colorize.widgets import class_probabilities as module

PLUGIN = "napari-colorize"
TINY = {
    "in_channels": 1,
    "grayscale": True,
    "width": 0.0625,
    "dropout": 0.0,
    "heads": [["type", "softmax", 5], ["accessories", "sigmoid", 3]],
}
NAMES = {"type": ["alien", "ape", "zombie", "female", "male"], "accessories": ["a", "b", "c"]}


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.registry import build_model

    torch.manual_seed(0)
    model = build_model("inception", TINY)
    # batch-norm statistics of real activations, so that the output depends on the input
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        model.train()(torch.rand(16, 1, 24, 24) * 2 - 1)
    model.eval()
    path = tmp_path_factory.mktemp("clf") / "tiny-classifier.safetensors"
    save_checkpoint(
        path, model.state_dict(), arch="inception", config=model.config,
        extra={"class_names": NAMES},
    )  # fmt: skip
    return path


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(module, "show_error", messages.append)
    return messages


@pytest.fixture
def widget(make_napari_viewer, qtbot, tiny_classifier, monkeypatch, tmp_path, errors):
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Class probabilities")
    qtbot.waitUntil(lambda: w.picker.worker is None, timeout=30_000)
    w.set_checkpoint(tiny_classifier)
    yield viewer, w
    qtbot.waitUntil(lambda: not w.busy, timeout=30_000)


def expected(path, plane):
    from napari_colorize.classify import Classifier, plane_lightness

    return Classifier.load(path).scores(plane_lightness(plane, ndim=2, value_range=(0, 255)))


def shown(w, name, plane):
    return lambda: w.shown == (name, plane) and not w.busy


def test_updates_when_the_plane_changes(widget, qtbot, tiny_classifier, errors):
    viewer, w = widget
    stack = np.random.default_rng(0).integers(0, 255, (3, 24, 24), dtype=np.uint8)
    stack[2] //= 4  # a darker plane: other probabilities
    viewer.add_image(stack, name="stack", contrast_limits=(0, 255))
    w.image.value = viewer.layers["stack"]
    viewer.dims.set_current_step(0, 0)  # napari shows the middle plane of a new stack
    qtbot.waitUntil(shown(w, "stack", (0,)), timeout=30_000)
    rows = w.bars.rows
    assert [r.head for r in rows] == ["type"] * 5 + ["accessories"] * 3
    assert {r.label for r in rows[:5]} == set(NAMES["type"])
    first = w.scores.head("type")
    want = expected(tiny_classifier, stack[0]).head("type")
    assert first == pytest.approx(want, rel=1e-4)

    viewer.dims.set_current_step(0, 2)
    qtbot.waitUntil(shown(w, "stack", (2,)), timeout=30_000)
    assert w.scores.head("type") == pytest.approx(
        expected(tiny_classifier, stack[2]).head("type"), rel=1e-4
    )
    assert w.scores.head("type") != pytest.approx(first, rel=1e-6)
    assert "plane [2]" in w.status.value
    assert errors == []


def test_fast_scrolling_shows_only_the_last_plane(widget, qtbot, tiny_classifier):
    viewer, w = widget
    stack = np.random.default_rng(1).integers(0, 255, (4, 24, 24), dtype=np.uint8)
    viewer.add_image(stack, name="stack", contrast_limits=(0, 255))
    w.image.value = viewer.layers["stack"]
    started = []
    original = w._start
    w._start = lambda request: (started.append(request.plane), original(request))
    for step in (1, 2, 3, 0, 3, 1):
        viewer.dims.set_current_step(0, step)
    qtbot.waitUntil(shown(w, "stack", (1,)), timeout=30_000)
    assert len(started) < 6  # requests made while one ran were merged, not queued
    assert w.scores.head("type") == pytest.approx(
        expected(tiny_classifier, stack[1]).head("type"), rel=1e-4
    )


def test_layer_change_and_top_k(widget, qtbot):
    viewer, w = widget
    viewer.add_image(np.full((24, 24), 100, np.uint8), name="flat")
    viewer.add_image(np.random.default_rng(2).random((30, 30, 3)), name="photo", rgb=True)
    w.image.value = viewer.layers["photo"]
    qtbot.waitUntil(shown(w, "photo", None), timeout=30_000)
    w.top_k.value = 2
    assert [r.head for r in w.bars.rows] == ["type"] * 2 + ["accessories"] * 2
    w.image.value = viewer.layers["flat"]
    qtbot.waitUntil(shown(w, "flat", None), timeout=30_000)
    w.bars.repaint()  # paints without errors


def test_unavailable_classifier_explains_how_to_get_it(widget, qtbot):
    viewer, w = widget
    viewer.add_image(np.zeros((24, 24), np.uint8), name="img")
    labels = {value: label for label, value in w.picker.choices()}
    assert "inception-imagenet" in labels
    assert "not downloaded" in labels["inception-imagenet"]
    w.classifier.value = "inception-imagenet"
    assert "downloaded on first use" in w.status.value
    assert not w.download_button.native.isHidden()
    assert w.bars.rows == []
    assert w._request() is None


def test_bundled_punks_classifier_is_the_default(make_napari_viewer, qtbot, errors):
    from napari_colorize.registry import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "inception-punks.safetensors").is_file():
        pytest.skip("inception-punks is not bundled in this checkout")
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Class probabilities")
    qtbot.waitUntil(lambda: w.picker.worker is None, timeout=30_000)
    assert w.classifier.value == "inception-punks"
    viewer.add_image(np.random.default_rng(3).integers(0, 255, (24, 24), dtype=np.uint8))
    qtbot.waitUntil(lambda: w.scores is not None and not w.busy, timeout=30_000)
    rows = w.bars.rows
    assert {r.label for r in rows if r.head == "type"} == set(NAMES["type"])
    assert len([r for r in rows if r.head == "accessories"]) == 5
    assert errors == []


def test_warns_when_the_image_is_unlike_the_training_data(widget, qtbot, tiny_classifier):
    """A photo-sized image for a 24 px classifier: a visible warning above the bars."""
    torch = pytest.importorskip("torch")
    from napari_colorize.classify import Classifier

    viewer, w = widget
    clf = Classifier.load(tiny_classifier)
    clf.card = {"image_size": 24, "input": "24x24 images"}
    clf.model.predict_proba = lambda x: torch.tensor([[0.96, 0.01, 0.01, 0.01, 0.01, 0, 0, 0]])
    w._loaded[str(tiny_classifier)] = clf
    viewer.add_image(np.random.default_rng(4).integers(0, 255, (200, 160), dtype=np.uint8),
                     name="photo")  # fmt: skip
    w.image.value = viewer.layers["photo"]
    qtbot.waitUntil(shown(w, "photo", None), timeout=30_000)
    assert not w.warning.native.isHidden()
    assert "it is 200x160 px (trained on 24x24 images)" in w.warning.value
    assert w.bars.muted  # grey bars: not to be read as they are
    assert w.bars.rows  # the bars stay, under the warning
    viewer.add_image(np.full((24, 24), 100, np.uint8), name="punk")
    w.image.value = viewer.layers["punk"]
    qtbot.waitUntil(shown(w, "punk", None), timeout=30_000)
    assert w.warning.native.isHidden()
    assert w.warning.value == ""
    assert not w.bars.muted
