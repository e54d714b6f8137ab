"""Colour hints in the Colorize widget: the Points selector, hint placement, live mode."""

import dataclasses
import threading

import numpy as np
import pytest

from napari_colorize.color import rgb_to_lab
from napari_colorize.widgets import colorize as colorize_module
from napari_colorize.widgets._live_hints import LIVE_DEBOUNCE_MS

RED = [1.0, 0.0, 0.0, 1.0]
BLUE = [0.0, 0.0, 1.0, 1.0]


@pytest.fixture(scope="session")
def hint_checkpoint(tmp_path_factory):
    """An untrained, very small hint-aware beta (its output depends on the hints)."""
    torch = pytest.importorskip("torch")
    from napari_colorize.checkpoint import save_checkpoint
    from napari_colorize.registry import build_model

    torch.manual_seed(0)
    config = {"widths": [4, 8], "in_channels": 4}
    model = build_model("beta", config)
    path = tmp_path_factory.mktemp("models") / "tiny-hints.safetensors"
    save_checkpoint(
        path, model.state_dict(), arch="beta", config=config,
        extra={"chroma_size": 32, "hints": True},
    )  # fmt: skip
    return path


@pytest.fixture
def hint_widget(colorize_widget, hint_checkpoint, qtbot):
    viewer, widget = colorize_widget
    widget.set_checkpoint(hint_checkpoint)
    yield viewer, widget
    # leave no live worker behind for the next test
    qtbot.waitUntil(lambda: not widget.live_hints.workers, timeout=30_000)


def ab_of(rgba):
    return rgb_to_lab(np.asarray(rgba[:3], dtype=float))[1:] / 128.0


def test_the_selector_says_what_hints_do_for_each_model(colorize_widget, hint_checkpoint):
    viewer, widget = colorize_widget  # set to an alpha model without hint channels
    points = viewer.add_points([[3, 3]], name="hints")
    # a network without a hint branch: the hints correct its colours
    assert widget.takes_hints
    assert widget.hints.enabled
    widget.hints.value = points
    assert "correct the colours" in widget.hints_info.value
    widget.set_checkpoint(hint_checkpoint)
    assert widget.takes_hints
    assert "learned hint branch" in widget.hints_info.value
    widget.model.value = "propagate"
    assert "spread along lightness" in widget.hints_info.value
    assert widget.live.value  # live mode is on by default
    assert [name for name, _layer in widget._hint_choices()] == ["hints"]


def test_points_become_hints_on_the_image_pixels_with_both_layers_geometry(hint_widget):
    viewer, widget = hint_widget
    widget.live.value = False
    image = viewer.add_image(np.zeros((24, 20), np.uint8), scale=(2.0, 0.5), translate=(10, -3))
    # pixel (5, 8) of the image is world (10 + 2 * 5, -3 + 0.5 * 8) = (20, 1);
    # the points layer has its own scale: data (10, 0.5) * (2, 2) = world (20, 1)
    points = viewer.add_points(
        [[10, 0.5], [100, 100]], scale=(2, 2), size=0.5, face_color=[RED, BLUE]
    )
    widget.image.value = image
    widget.hints.value = points
    job = widget._make_job(image, live=True)
    hints = job.hints()
    assert hints.shape == (24, 20, 3)
    # size 0.5 * scale 2 = 1 world unit: half a pixel tall, two pixels wide
    ys, xs = np.nonzero(hints[..., 2])
    assert set(zip(ys.tolist(), xs.tolist())) == {(5, 7), (5, 8), (5, 9)}
    np.testing.assert_allclose(hints[5, 8, :2], ab_of(RED), atol=1e-5)  # the other is outside


def test_live_mode_reruns_when_a_point_is_added_moved_or_recoloured(hint_widget, qtbot):
    viewer, widget = hint_widget
    gray = np.linspace(0, 255, 24 * 20).reshape(24, 20).astype(np.uint8)
    image = viewer.add_image(gray, name="scan")
    points = viewer.add_points(np.zeros((0, 2)), name="hints", size=5)
    widget.image.value = image
    widget.hints.value = points

    def applied(n):
        qtbot.waitUntil(lambda: widget.live_counts["applied"] >= n, timeout=30_000)
        return viewer.layers["scan colorized"].data.copy()

    points.current_face_color = "red"
    points.add([[12, 10]])
    red = applied(1)
    assert red.shape == (24, 20, 3)
    d = points.data.copy()
    d[0] = [5, 5]
    points.data = d  # moved
    moved = applied(2)
    assert not np.array_equal(moved, red)
    colors = points.face_color.copy()
    colors[0] = BLUE
    points.face_color = colors  # recoloured
    blue = applied(3)
    assert not np.array_equal(blue, moved)
    # the output keeps the input's lightness
    lightness = rgb_to_lab(blue)[..., 0]
    assert np.corrcoef(lightness.ravel(), gray.ravel().astype(float))[0, 1] > 0.99
    # switched off: edits no longer re-colorize
    widget.live.value = False
    points.add([[1, 1]])
    qtbot.wait(3 * LIVE_DEBOUNCE_MS)
    assert not widget.live_hints.timer.isActive()
    assert widget.live_counts["started"] == 3


def test_a_stale_live_run_never_touches_the_layer(hint_widget, qtbot, monkeypatch):
    viewer, widget = hint_widget
    image = viewer.add_image(np.linspace(0, 1, 16 * 16).reshape(16, 16), name="scan")
    points = viewer.add_points([[8, 8]], name="hints", size=6, face_color=[RED])
    widget.image.value = image

    real = colorize_module._run_job
    gates, results = [], {}

    def gated(job):  # each run waits for the test; then it runs to the end even if stale
        gate = threading.Event()
        gates.append((job, gate))
        gate.wait(30)
        result = yield from real(dataclasses.replace(job, stop=False, colorizer=None))
        results[len(results)] = (job, result)
        return result

    monkeypatch.setattr(colorize_module, "_run_job", gated)
    widget.hints.value = points  # first live run
    qtbot.waitUntil(lambda: len(gates) == 1, timeout=10_000)
    points.face_color = [BLUE]  # a newer edit: second live run
    qtbot.waitUntil(lambda: len(gates) == 2, timeout=10_000)
    (stale_job, stale_gate), (_job, fresh_gate) = gates
    assert stale_job.stop  # asked to stop as soon as it was outdated

    fresh_gate.set()
    qtbot.waitUntil(lambda: widget.live_counts["applied"] == 1, timeout=30_000)
    fresh = viewer.layers["scan colorized"].data.copy()
    stale_gate.set()
    qtbot.waitUntil(lambda: widget.live_counts["dropped"] == 1, timeout=30_000)
    qtbot.waitUntil(lambda: not widget.live_hints.workers, timeout=30_000)
    assert widget.live_counts == {"started": 2, "applied": 1, "dropped": 1}
    stale_rgb = next(r.rgb for job, r in results.values() if job is stale_job)
    assert not np.array_equal(stale_rgb, fresh)  # it would have changed the layer
    np.testing.assert_array_equal(viewer.layers["scan colorized"].data, fresh)


def test_hints_on_stacks_all_planes_and_live_on_the_current_plane(
    hint_widget, run_and_wait, qtbot
):
    viewer, widget = hint_widget
    widget.live.value = False
    stack = np.random.default_rng(0).integers(0, 255, (3, 16, 16)).astype(np.uint8)
    image = viewer.add_image(stack, name="stack")
    widget.image.value = image
    run_and_wait(widget)  # no hints layer yet
    plain = viewer.layers["stack colorized"].data.copy()
    points = viewer.add_points([[1, 8, 8]], name="hints", size=6, face_color=[BLUE])
    widget.hints.value = points
    run_and_wait(widget)
    hinted = viewer.layers["stack colorized"].data.copy()
    assert hinted.shape == (3, 16, 16, 3)
    # the point is on plane 1: only that plane changes
    np.testing.assert_array_equal(hinted[[0, 2]], plain[[0, 2]])
    assert not np.array_equal(hinted[1], plain[1])

    # live: the current plane is re-colorized into the colorized stack
    viewer.dims.set_point(0, 2)
    widget.live.value = True
    points.add([[2, 4, 4]])
    qtbot.waitUntil(lambda: widget.live_counts["applied"] >= 1, timeout=30_000)
    live = viewer.layers["stack colorized"].data
    assert live.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(live[:2], hinted[:2])
    assert not np.array_equal(live[2], hinted[2])
