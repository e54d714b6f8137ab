"""The Colorize widget under clumsy use (issue 17): offline downloads, hint points, big
stacks written to disk, progress in planes, and the dock removed during a run."""

import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from napari_colorize import lazy_result, registry
from napari_colorize.inference import ColorizeProgress
from napari_colorize.registry import PretrainedModel
from napari_colorize.widgets import colorize as colorize_module
from napari_colorize.widgets._hint_points import NEXT_COLORS, default_point_size
from napari_colorize.widgets._result_store import store_of
from napari_colorize.widgets._status_text import MAX_LINE, progress_text

PLUGIN = "napari-colorize"
BLUE = dict(NEXT_COLORS)["blue"]


@pytest.fixture
def errors(monkeypatch):
    """The messages the widget shows as error notifications."""
    messages = []
    monkeypatch.setattr(colorize_module, "show_error", messages.append)
    return messages


@pytest.fixture
def gate(monkeypatch):
    """Holds each run's worker after its first event until ``gate.set()``."""
    event = threading.Event()
    original = colorize_module._run_job

    def gated(job):
        events = original(job)
        yield next(events)
        event.wait(10)
        return (yield from events)

    monkeypatch.setattr(colorize_module, "_run_job", gated)
    yield event
    event.set()


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A private folder for result stores."""
    folder = tmp_path / "results"
    monkeypatch.setenv("NAPARI_COLORIZE_RESULTS", str(folder))
    return folder


# ------------------------------------------------------------- item 14: offline download

_LONG_CAUSE = (
    "HTTPSConnectionPool(host='example.invalid', port=443): Max retries exceeded with url: "
    '/weights/tiny-offline.safetensors (Caused by NameResolutionError("<urllib3.connection.'
    "HTTPSConnection object at 0x7f0c2a1b3d90>: Failed to resolve 'example.invalid' ([Errno "
    '-3] Temporary failure in name resolution)"))'
)


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        "requests",
    ],
    ids=["URLError", "requests-ConnectionError"],
)
def test_an_offline_download_says_two_short_lines_and_keeps_the_rest_in_the_tooltip(
    colorize_widget, run_and_wait, errors, tmp_path, monkeypatch, error
):
    import pooch
    import requests

    viewer, widget = colorize_widget
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setenv("NAPARI_COLORIZE_CACHE", str(tmp_path / "cache"))
    registry.register_pretrained(
        PretrainedModel(
            "tiny-offline", "alpha", "never reachable", source="url",
            filename="tiny-offline.safetensors",
            url="https://example.invalid/weights/tiny-offline.safetensors",
            sha256="0" * 64, size=1000,
        ),
        replace=True,
    )  # fmt: skip
    if error == "requests":
        error = requests.ConnectionError(_LONG_CAUSE)

    def offline(*args, **kwargs):
        raise error

    monkeypatch.setattr(pooch, "retrieve", offline)
    widget.refresh_choices(block=True)
    widget.set_model("tiny-offline")
    widget.image.value = viewer.add_image(np.zeros((16, 16), np.uint8), name="flat")
    run_and_wait(widget)

    status = widget.status.value
    lines = status.splitlines()
    assert len(lines) <= 2, status
    assert all(len(line) <= MAX_LINE + len("error: ") for line in lines), status
    assert "tiny-offline" in lines[0]
    assert "Offline" in status
    assert "Browse checkpoint" in status
    assert "Max retries" not in status
    assert "Errno" not in status
    # the whole message: in the tooltip and the notification
    assert "load it by path" in widget.status.tooltip
    assert type(error).__name__ in widget.status.tooltip
    assert len(errors) == 1
    assert "load it by path" in errors[0]
    # at the dock's width the status stays a few lines tall
    label = widget.status.native
    height = label.heightForWidth(300)
    assert height <= 8 * label.fontMetrics().lineSpacing(), (height, status)
    assert "flat colorized" not in viewer.layers
    assert widget.run_button.enabled
    assert not widget.busy


# ------------------------------------------------------------------- item 16: hints


def test_the_result_goes_below_the_hint_points_and_live_runs_keep_them_selected(
    colorize_widget, qtbot, errors
):
    viewer, widget = colorize_widget
    gray = np.linspace(0, 255, 24 * 24).reshape(24, 24).astype(np.uint8)
    image = viewer.add_image(gray, name="punk")
    points = viewer.add_points(np.zeros((0, 2)), name="hints")
    widget.image.value = image
    widget.hints.value = points
    viewer.layers.selection.active = points
    points.add([[12, 12]])
    qtbot.waitUntil(lambda: widget.live_counts["applied"] >= 1, timeout=30_000)
    names = [layer.name for layer in viewer.layers]
    assert names.index("punk colorized") < names.index("hints"), names  # hints drawn on top
    assert viewer.layers.selection.active is points  # the user can go on adding points
    # a full run too
    widget.live.value = False
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    names = [layer.name for layer in viewer.layers]
    assert names.index("punk colorized") < names.index("hints"), names
    assert errors == []


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [((24, 24), (1, 1), 1.0), ((512, 600), (1, 1), 8.0), ((24, 24), (0.5, 0.5), 0.5)],
)
def test_hint_points_are_sized_for_the_image(colorize_widget, shape, scale, expected):
    viewer, widget = colorize_widget
    image = viewer.add_image(np.zeros(shape, np.uint8), scale=scale)
    points = viewer.add_points(np.zeros((0, 2)), name="hints")
    assert points.current_size == 10  # napari's default: half a punk
    assert default_point_size(image, points) == pytest.approx(expected)
    widget.image.value = image
    widget.hints.value = points
    assert points.current_size == pytest.approx(expected)
    points.add([[5, 5]])
    assert points.size[-1] == pytest.approx(expected)


def test_a_size_the_user_chose_is_kept(colorize_widget):
    viewer, widget = colorize_widget
    image = viewer.add_image(np.zeros((24, 24), np.uint8))
    points = viewer.add_points(np.zeros((0, 2)), name="hints", size=3)
    points.current_size = 3
    widget.image.value = image
    widget.hints.value = points
    assert points.current_size == 3


def test_the_next_point_colour_leaves_the_selected_point_alone(colorize_widget, qtbot):
    viewer, widget = colorize_widget
    widget.live.value = False
    viewer.add_image(np.zeros((24, 24), np.uint8), name="punk")
    points = viewer.add_points(np.zeros((0, 2)), name="hints")
    assert not widget.next_color.combo.enabled  # no Points layer picked yet
    widget.hints.value = points
    assert widget.next_color.combo.enabled
    assert "next point colour" in widget.hints_info.value
    assert "selected" in widget.next_color.combo.tooltip
    first = dict(NEXT_COLORS)["red"]
    widget.next_color.combo.value = first
    points.add([[5, 5]])
    assert points.selected_data == {0}  # napari selects the point just added
    np.testing.assert_allclose(points.face_color[0], first)
    widget.next_color.combo.value = BLUE
    np.testing.assert_allclose(points.face_color[0], first)  # not recoloured
    points.add([[10, 10]])
    np.testing.assert_allclose(points.face_color[1], BLUE)
    np.testing.assert_allclose(points.face_color[0], first)


def test_any_next_colour_from_the_colour_dialog(colorize_widget, monkeypatch):
    from napari_colorize.widgets import _hint_points

    viewer, widget = colorize_widget
    points = viewer.add_points(np.zeros((0, 2)), name="hints")
    widget.hints.value = points
    monkeypatch.setattr(_hint_points, "ask_color", lambda parent, rgba: (0.2, 0.4, 0.6, 1.0))
    widget.next_color.combo.value = _hint_points.OTHER_COLOR
    assert widget.next_color.color == (0.2, 0.4, 0.6, 1.0)
    assert widget.next_color.combo.value == (0.2, 0.4, 0.6, 1.0)  # offered from now on
    points.add([[3, 3]])
    np.testing.assert_allclose(points.face_color[0], (0.2, 0.4, 0.6, 1.0))
    # cancelled: the previous colour stays
    monkeypatch.setattr(_hint_points, "ask_color", lambda parent, rgba: None)
    widget.next_color.combo.value = _hint_points.OTHER_COLOR
    assert widget.next_color.combo.value == (0.2, 0.4, 0.6, 1.0)


# --------------------------------------------------------- item 17: big stacks, progress


def _dask_stack(n=3, size=16):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    return data, da.from_array(data, chunks=(1, size, size))


def _in_memory(viewer, widget, run_and_wait, data):
    reference = viewer.add_image(data, name="numpy", contrast_limits=(0, 255))
    run_and_wait(widget, reference)
    return np.asarray(viewer.layers["numpy colorized"].data)


def test_a_large_lazy_stack_is_written_to_a_zarr_store_and_shown_lazily(
    colorize_widget, run_and_wait, errors, results, monkeypatch
):
    import dask.array as da

    viewer, widget = colorize_widget
    data, lazy = _dask_stack()
    monkeypatch.setattr(lazy_result, "LAZY_RESULT_BYTES", 100)
    widget.add_lab.value = True
    layer = viewer.add_image(lazy, name="big", contrast_limits=(0, 255))
    run_and_wait(widget, layer)
    assert errors == []
    out = viewer.layers["big colorized"]
    assert isinstance(out.data, da.Array)
    path = Path(store_of(out))
    assert path.is_dir()
    assert path.parent == results
    assert path.suffix == ".zarr"
    assert str(path) in widget.status.value  # the user is told where
    # the dask array reads that store
    import zarr

    on_disk = zarr.open_array(str(path), mode="r")
    np.testing.assert_array_equal(np.asarray(out.data), on_disk[...])
    # the same values as an in-memory run
    expected = _in_memory(viewer, widget, run_and_wait, data)
    np.testing.assert_array_equal(np.asarray(out.data), expected)
    # the L, a, b layers read the store lazily too
    for channel in "Lab":
        assert isinstance(viewer.layers[f"big {channel}"].data, da.Array)
    from napari_colorize.layers import split_lab

    np.testing.assert_allclose(
        np.asarray(viewer.layers["big a"].data), split_lab(expected)[1], atol=1e-4
    )
    # deleting the layers removes the store
    viewer.layers.remove(out)
    assert path.is_dir()  # the hidden L, a, b layers still read it
    for channel in "Lab":
        viewer.layers.remove(f"big {channel}")
    assert not path.exists()


def test_a_small_or_numpy_stack_stays_in_memory(colorize_widget, run_and_wait, results):
    viewer, widget = colorize_widget
    _data, lazy = _dask_stack()
    run_and_wait(widget, viewer.add_image(lazy, name="small", contrast_limits=(0, 255)))
    assert isinstance(viewer.layers["small colorized"].data, np.ndarray)
    assert store_of(viewer.layers["small colorized"]) is None
    assert not results.exists() or list(results.iterdir()) == []


def test_a_rerun_a_preview_and_a_cancel_leave_no_stray_store(
    colorize_widget, run_and_wait, errors, results, monkeypatch, qtbot
):
    viewer, widget = colorize_widget
    _data, lazy = _dask_stack()
    monkeypatch.setattr(lazy_result, "LAZY_RESULT_BYTES", 100)
    layer = viewer.add_image(lazy, name="big", contrast_limits=(0, 255))
    run_and_wait(widget, layer)
    first = Path(store_of(viewer.layers["big colorized"]))
    run_and_wait(widget, layer)  # the new result replaces the old store
    second = Path(store_of(viewer.layers["big colorized"]))
    assert second != first
    assert second.is_dir()
    assert not first.exists()
    # a preview of one plane is written into the store
    before = np.asarray(viewer.layers["big colorized"].data).copy()
    widget.stack.value = colorize_module.CURRENT_PLANE
    viewer.dims.set_point(0, 1)
    widget.chroma_size.value = 0  # another working size: another colour for that plane
    run_and_wait(widget, layer)
    out = viewer.layers["big colorized"]
    assert out.data.shape == before.shape
    assert Path(store_of(out)) == second
    after = np.asarray(out.data)
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    # cancelled: its store is removed
    widget.stack.value = colorize_module.ALL_PLANES
    gate = threading.Event()
    original = colorize_module._run_job

    def gated(job):
        events = original(job)
        yield next(events)
        gate.wait(10)
        return (yield from events)

    monkeypatch.setattr(colorize_module, "_run_job", gated)
    worker = widget.run(layer, start=False)
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        widget.cancel()
        gate.set()
    assert sorted(results.iterdir()) == [second]
    assert errors == []


def test_a_full_disk_under_the_store_is_one_line_and_leaves_no_store(
    colorize_widget, run_and_wait, errors, results, monkeypatch
):
    import errno

    viewer, widget = colorize_widget
    _data, lazy = _dask_stack()
    monkeypatch.setattr(lazy_result, "LAZY_RESULT_BYTES", 100)
    create = lazy_result.create_result_store

    class FullDisk:
        def __init__(self, array):
            self.array = array
            self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

        def __setitem__(self, index, value):
            raise OSError(errno.ENOSPC, "No space left on device")

    def full(*args, **kwargs):
        store = create(*args, **kwargs)
        store.array = FullDisk(store.array)
        return store

    monkeypatch.setattr(lazy_result, "create_result_store", full)
    run_and_wait(widget, viewer.add_image(lazy, name="big", contrast_limits=(0, 255)))
    assert len(errors) == 1
    assert errors[0].startswith(f"the disk holding {str(results)!r} is full")
    assert "NAPARI_COLORIZE_RESULTS" in errors[0]
    assert "\n" not in widget.status.value
    assert "big colorized" not in viewer.layers
    assert list(results.iterdir()) == []  # nothing half-written left


def test_stores_of_ended_processes_are_removed(results):
    results.mkdir(parents=True)
    stale = results / "old-pid999999999-1.zarr"
    stale.mkdir()
    foreign = results / "keep-me"
    foreign.mkdir()
    store = lazy_result.create_result_store((2, 4, 4, 3), name="new")
    assert not stale.exists()
    assert foreign.is_dir()
    assert store.path.is_dir()
    assert not lazy_result.release_store(foreign)  # never ours: left alone
    assert foreign.is_dir()
    assert lazy_result.release_store(store.path)
    assert not store.path.exists()


def test_progress_says_which_plane_of_how_many():
    # 4 planes of 4 tiles: 5 steps each
    event = ColorizeProgress(9, 20, (1,), "tiles 4/4")
    assert progress_text(event, (4,)) == "plane 2 of 4: tiles 4/4"
    # two planes predicted together: 8 tiles
    assert progress_text(ColorizeProgress(8, 20, (0,), "tiles 8/8"), (4,)) == (
        "planes 1-2 of 4: tiles 8/8"
    )
    assert progress_text(ColorizeProgress(10, 20, (1,), "plane 2/4"), (4,)) == "plane 2 of 4 done"
    # stacks with two leading axes count planes in order
    assert progress_text(ColorizeProgress(3, 12, (1, 0), "tiles 1/1"), (2, 3)) == (
        "plane 4 of 6: tiles 1/1"
    )
    # one image: unchanged
    assert progress_text(ColorizeProgress(1, 2, (), "tiles 1/1"), ()) == "tiles 1/1"


def test_the_status_counts_planes_during_a_run(colorize_widget, qtbot, errors):
    viewer, widget = colorize_widget
    widget.chroma_size.value = 0  # full resolution: several tiles per plane
    layer = viewer.add_image(np.zeros((3, 16, 16), np.uint8), name="stack")
    seen = []
    worker = widget.run(layer, start=False)
    worker.yielded.connect(lambda _e: seen.append(widget.status.value))
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    steps = [s for s in seen if "tiles" in s or s.endswith("done")]
    assert steps, seen
    assert all(s.startswith(("plane ", "planes ")) for s in steps), seen
    assert any(s.endswith("of 3 done") for s in steps), seen


# --------------------------------------------------------- item 18: dock removed mid-run


@pytest.mark.parametrize("how", ["close button", "remove_dock_widget"])
def test_removing_the_dock_during_a_run_stops_it_and_adds_nothing(
    make_napari_viewer, tiny_checkpoint, qtbot, gate, results, monkeypatch, how
):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=30_000)
    widget.set_checkpoint(tiny_checkpoint)
    widget.device.value = "cpu"
    monkeypatch.setattr(lazy_result, "LAZY_RESULT_BYTES", 100)
    _data, lazy = _dask_stack(4)
    viewer.add_image(lazy, name="stack", contrast_limits=(0, 255))
    worker = widget.run(start=False)
    job = widget._job
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        if how == "close button":
            dock.title.close_button.click()
        else:
            viewer.window.remove_dock_widget(widget.native)
        qtbot.waitUntil(lambda: job.stop, timeout=5_000)
        gate.set()
    qtbot.wait(100)
    assert not widget.busy
    assert "stack colorized" not in viewer.layers
    assert not results.exists() or list(results.iterdir()) == []  # no store left behind


def test_hiding_the_dock_does_not_stop_the_run(make_napari_viewer, tiny_checkpoint, qtbot, gate):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=30_000)
    widget.set_checkpoint(tiny_checkpoint)
    widget.device.value = "cpu"
    viewer.add_image(np.zeros((2, 16, 16), np.uint8), name="stack")
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.yielded, timeout=30_000):
        worker.start()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        dock.title.hide_button.click()  # hidden, can be shown again from the menu
        qtbot.wait(50)
        gate.set()
    qtbot.waitUntil(lambda: "stack colorized" in viewer.layers, timeout=5_000)
