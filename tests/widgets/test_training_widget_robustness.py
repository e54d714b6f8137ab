"""The Training widget when things go wrong: long errors, tall docks, reruns, empty runs.

Issue 17 items 13 and 15: a long error must not widen the dock, the docks
scroll, a second run never replaces the first one's checkpoint unasked, a run
that trained nothing registers nothing, and the plugin's own result and
preview layers are not offered as training data.
"""

import numpy as np
import pytest
from qtpy.QtWidgets import QScrollArea

from napari_colorize.widgets import training as training_module
from napari_colorize.widgets._training_output import next_free_output

PLUGIN = "napari-colorize"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def messages(monkeypatch):
    shown = {"error": [], "info": []}
    monkeypatch.setattr(training_module, "show_error", shown["error"].append)
    monkeypatch.setattr(training_module, "show_info", shown["info"].append)
    return shown


def _rgb(n=3, size=32):
    y, x = np.mgrid[0:size, 0:size] / size
    planes = [np.stack([x * (i + 1) / n, y, 1 - x], -1) for i in range(n)]
    return (np.clip(np.stack(planes), 0, 1) * 255).astype(np.uint8)


def _configure(widget, layers, *, steps=3):
    widget.layers.value = layers
    widget.start_from.value = "arch:alpha"
    widget.model_config.value = '{"width": 2}'
    widget.length_unit.value = "steps"
    widget.length.value = steps
    widget.batch_size.value = 2
    widget.patch_size.value = 16
    widget.preview_every.value = 100
    widget.amp.value = False
    widget.device.value = "cpu"


def _run(qtbot, widget, *, stop_at_once=False):
    worker = widget.start(start=False)
    assert worker is not None, widget.status.value
    if stop_at_once:
        widget.stop()  # before the first step
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    return worker


def _scroll_area_of(qwidget):
    parent = qwidget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


# ------------------------------------------------------------------ item 13


def test_a_long_error_wraps_instead_of_widening_the_dock(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 900)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=60_000)
    qtbot.wait(50)
    canvas = viewer.window._qt_viewer.canvas.native
    before = canvas.width()

    widget._report(ValueError("a very long reason " * 110))  # ~2000 characters
    assert len(widget.status.value) > 1900
    qtbot.wait(100)
    assert dock.sizeHint().width() < 500
    assert dock.width() < 500
    assert canvas.width() > 0.8 * before  # the canvas keeps its room
    # all of the text is shown: the label grew in height, inside the scroll area
    label = widget.status.native
    assert label.wordWrap()
    assert label.height() >= label.heightForWidth(label.width()) > 5 * label.fontMetrics().height()


@pytest.mark.parametrize("name", ["Training", "Class probabilities", "Lab channels", "Colorize"])
def test_each_dock_scrolls_when_the_window_is_short(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1000, 400)  # napari's own minimum is about 510 px: shorter than Training
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    if getattr(getattr(widget, "picker", None), "worker", None) is not None:
        qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=60_000)
    qtbot.wait(50)
    scroll = _scroll_area_of(widget.status.native)
    assert scroll is not None, f"the {name} dock has no scroll area"
    assert scroll.widgetResizable()
    # the rows stay readable in a narrowed dock, and need no sideways scrolling
    assert scroll.minimumSizeHint().width() >= 250
    assert scroll.horizontalScrollBar().maximum() == 0
    # the dock fits the window instead of pushing it taller (Training needs 786 px)
    assert window.height() < 700
    assert dock.height() < window.height()
    if name == "Training":  # 786 px of rows: reachable by scrolling
        assert scroll.verticalScrollBar().maximum() > 0


# ------------------------------------------------------------------ item 15


def test_next_free_output_counts_on():
    assert next_free_output("/nonexistent/run").name == "run.safetensors"


def test_next_free_output_on_existing_files(tmp_path):
    (tmp_path / "run.safetensors").touch()
    assert next_free_output(tmp_path / "run.safetensors").name == "run-2.safetensors"
    (tmp_path / "run-2.safetensors").touch()
    assert next_free_output(tmp_path / "run.safetensors").name == "run-3.safetensors"
    assert next_free_output(tmp_path / "run-2.safetensors").name == "run-3.safetensors"


def test_a_second_run_gets_a_fresh_default_output(
    make_napari_viewer, qtbot, user_dirs, messages, monkeypatch
):
    from napari_colorize.registry import model_names

    monkeypatch.setattr(training_module, "_default_output", lambda: user_dirs / "m.safetensors")
    viewer = make_napari_viewer()
    layer = viewer.add_image(_rgb(), name="planes", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [layer])

    _run(qtbot, widget)
    first = user_dirs / "m.safetensors"
    assert first.is_file(), widget.status.value
    first_bytes = first.read_bytes()
    assert "registered as 'm'" in widget.status.value

    _run(qtbot, widget)
    second = user_dirs / "m-2.safetensors"
    assert second.is_file(), widget.status.value
    assert first.read_bytes() == first_bytes  # the first run's model is kept
    assert str(widget.output.value).endswith("m-2.safetensors")
    assert {"m", "m-2"} <= set(model_names())
    assert any("m.safetensors is kept" in line for line in messages["info"])
    assert messages["error"] == []


def test_a_chosen_existing_output_is_replaced_only_when_confirmed(
    make_napari_viewer, qtbot, user_dirs, messages
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(_rgb(), name="planes", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [layer])
    out = user_dirs / "mine.safetensors"
    out.write_bytes(b"an older model")
    widget.output.value = str(out)  # typed by the user

    assert widget.start(start=False) is None  # asks first
    assert not widget.busy
    assert "mine.safetensors exists" in widget.status.value
    assert widget.start_button.text == "Overwrite"
    assert out.read_bytes() == b"an older model"

    _run(qtbot, widget)  # pressed again: replaced
    assert out.read_bytes() != b"an older model"
    assert widget.start_button.text == "Start"
    assert "registered as 'mine'" in widget.status.value


def test_changing_the_output_after_the_question_asks_again(
    make_napari_viewer, user_dirs, messages
):
    viewer = make_napari_viewer()
    layer = viewer.add_image(_rgb(), name="planes", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [layer])
    for name in ("a", "b"):
        (user_dirs / f"{name}.safetensors").write_bytes(b"old")
    widget.output.value = str(user_dirs / "a.safetensors")
    assert widget.start(start=False) is None
    widget.output.value = str(user_dirs / "b.safetensors")
    assert widget.start_button.text == "Start"
    assert widget.start(start=False) is None  # b was not confirmed
    assert "b.safetensors exists" in widget.status.value


def test_a_run_stopped_before_its_first_step_registers_and_keeps_nothing(
    make_napari_viewer, qtbot, user_dirs, messages
):
    from napari_colorize.registry import model_names

    viewer = make_napari_viewer()
    layer = viewer.add_image(_rgb(), name="planes", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [layer], steps=50)
    out = user_dirs / "empty.safetensors"
    widget.output.value = str(out)

    _run(qtbot, widget, stop_at_once=True)
    assert widget.last_result is not None
    assert widget.last_result.step == 0
    assert "empty" not in model_names()
    assert not out.exists()
    assert "nothing was trained" in widget.status.value
    assert "registered as" not in widget.status.value
    assert messages["error"] == []


def test_results_and_previews_are_not_offered_as_training_data(make_napari_viewer, messages):
    from napari_colorize.layers import METADATA_KEY

    viewer = make_napari_viewer()
    viewer.add_image(_rgb(), name="planes", rgb=True)
    viewer.add_image(
        _rgb(), name="planes colorized", rgb=True,
        metadata={METADATA_KEY: {"source": "gray", "role": "colorized"}},
    )  # fmt: skip
    viewer.add_image(
        _rgb(1)[0], name="planes preview", rgb=True,
        metadata={METADATA_KEY: {"source": "planes", "role": training_module.PREVIEW_ROLE}},
    )  # fmt: skip
    viewer.add_image(_rgb()[..., 0], name="my gray", metadata={"unrelated": 1})
    widget = training_module.TrainingWidget(viewer, probe=False)
    offered = [label for label, _layer in widget._layer_choices()]
    assert offered == ["planes", "my gray"]


def test_resuming_a_finished_run_says_nothing_was_trained(
    make_napari_viewer, qtbot, user_dirs, messages
):
    from napari_colorize.checkpoint import load_checkpoint

    viewer = make_napari_viewer()
    layer = viewer.add_image(_rgb(), name="planes", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [layer], steps=3)
    out = user_dirs / "done.safetensors"
    widget.output.value = str(out)
    _run(qtbot, widget)
    assert load_checkpoint(out).training_meta["step"] == 3

    worker = widget.start(resume=True, start=False)  # the same length: nothing left to do
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
    assert "nothing was trained" in widget.status.value
    assert "registered as" not in widget.status.value
    assert load_checkpoint(out).training_meta["step"] == 3  # kept
    assert messages["error"] == []
