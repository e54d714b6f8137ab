"""The Training widget on tiny layers with a tiny alpha model: start, preview, stop, resume."""

import numpy as np
import pytest

from napari_colorize.widgets import training as training_module

PLUGIN = "napari-colorize"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def errors(monkeypatch):
    messages = []
    monkeypatch.setattr(training_module, "show_error", messages.append)
    monkeypatch.setattr(training_module, "show_info", lambda *_: None)
    return messages


def _stack(n=3, size=32, seed=0):
    """Smooth colour planes: learnable, and different from each other."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    planes = []
    for _ in range(n):
        c = rng.uniform(0.2, 0.8, 3)
        rgb = np.stack([c[0] * x + 0.1, c[1] * y + 0.1, c[2] * (1 - x) + 0.1], -1)
        planes.append(np.clip(rgb, 0, 1))
    return (np.stack(planes) * 255).astype(np.uint8)


def _configure(widget, layers, out, *, steps=6, name="tiny-trained"):
    widget.layers.value = layers
    widget.start_from.value = "arch:alpha"
    widget.model_config.value = '{"width": 2}'
    widget.length_unit.value = "steps"
    widget.length.value = steps
    widget.batch_size.value = 4
    widget.patch_size.value = 16
    widget.preview_every.value = 2
    widget.lr.value = "3e-3"
    widget.amp.value = False
    widget.device.value = "cpu"
    widget.output.value = str(out)
    widget.model_name.value = name


def _wait_probe(qtbot, widget):
    # a condition, not a signal: the worker may already have finished
    qtbot.waitUntil(lambda: widget.picker.worker is None, timeout=60_000)


def _train(qtbot, widget, *, resume=False, on_event=None, timeout=60_000):
    events = []
    worker = widget.start(resume=resume, start=False)
    assert worker is not None, widget.status.value
    worker.yielded.connect(events.append)
    if on_event is not None:
        worker.yielded.connect(on_event)
    with qtbot.waitSignal(worker.finished, timeout=timeout):
        worker.start()
    return events


def test_trains_previews_registers_and_colorize_offers_the_model(
    make_napari_viewer, qtbot, user_dirs, errors
):
    from napari_colorize.training.events import PreviewEvent, StepEvent, ValidationEvent

    viewer = make_napari_viewer()
    rgb = viewer.add_image(_stack(), name="planes", rgb=True)
    gray = viewer.add_image(_stack()[..., 0], name="gray planes")
    _dock, colorize = viewer.window.add_plugin_dock_widget(PLUGIN, "Colorize")
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")
    _wait_probe(qtbot, colorize)
    _wait_probe(qtbot, widget)
    assert "arch:alpha" in [v for _label, v in widget._start_choices()]
    assert "cpu" in [v for _label, v in widget.picker.devices]
    out = user_dirs / "runs" / "tiny.safetensors"
    _configure(widget, [rgb], out)

    previews = []
    events = _train(
        qtbot,
        widget,
        on_event=lambda e: (
            previews.append(widget.preview_layer.data.copy())
            if isinstance(e, PreviewEvent)
            else None
        ),
    )
    assert errors == []
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(1, 7))
    assert all(np.isfinite(e.loss) and e.images_per_s > 0 for e in steps)
    assert any(isinstance(e, ValidationEvent) for e in events)
    assert len(widget.loss_plot.series["train"]) == 6
    assert widget.loss_plot.series["val"]
    # the preview shows the held-out plane (the middle one of 3) and changes as it learns
    assert len(previews) >= 3
    assert previews[0].shape == (32, 32, 3)
    assert any(not np.array_equal(previews[0], p) for p in previews[1:])
    assert widget.progress.value == widget.progress.max == 6
    assert widget.start_button.text == "Start"
    assert widget.resume_button.enabled
    assert widget._session is None  # model and optimizer released
    assert "registered as 'tiny-trained'" in widget.status.value
    assert out.is_file()

    # the Colorize widget of the same viewer offers it at once and can use it
    qtbot.waitUntil(
        lambda: "tiny-trained" in [v for _label, v in colorize._model_choices()], timeout=30_000
    )
    colorize.model.value = "tiny-trained"
    colorize.device.value = "cpu"
    colorize.image.value = gray
    worker = colorize.run(start=False)
    assert worker is not None, colorize.status.value
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        worker.start()
    assert viewer.layers["gray planes colorized"].data.shape == (3, 32, 32, 3)

    from napari_colorize.registry import load_model

    _model, meta = load_model("tiny-trained")
    assert meta.arch == "alpha"
    assert "planes" in str(meta.data)
    # trained from layers: a residual on the lightness lookup table, whose error is shown
    assert meta.config["lightness_table"] is True
    assert "lookup table" in widget.status.value


def test_stop_then_resume_continues_from_the_checkpoint(
    make_napari_viewer, qtbot, user_dirs, errors
):
    from napari_colorize.checkpoint import load_checkpoint
    from napari_colorize.training.events import StartEvent, StepEvent, TrainResult

    viewer = make_napari_viewer()
    layer = viewer.add_image(_stack(4, 32), name="four", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    out = user_dirs / "stop.safetensors"
    _configure(widget, [layer], out, steps=400, name="stopped-model")

    def stop_early(event):
        if isinstance(event, StepEvent) and event.step >= 2 and widget.busy:
            widget._on_start_clicked()  # the button reads "Stop" while training

    assert widget.start_button.text == "Start"
    events = _train(qtbot, widget, on_event=stop_early)
    result = events[-1]
    assert isinstance(result, TrainResult)
    assert result.stopped
    assert 2 <= result.step < 400
    assert errors == []
    assert load_checkpoint(out).training_meta["step"] == result.step
    assert widget.resume_button.enabled

    widget.length.value = result.step + 3
    resumed = _train(qtbot, widget, resume=True)
    assert errors == []
    start = next(e for e in resumed if isinstance(e, StartEvent))
    assert start.step == result.step
    steps = [e.step for e in resumed if isinstance(e, StepEvent)]
    assert steps == [result.step + 1, result.step + 2, result.step + 3]
    assert not resumed[-1].stopped
    assert load_checkpoint(out).training_meta["step"] == result.step + 3


def test_bad_data_gives_a_clear_message_and_starts_nothing(make_napari_viewer, user_dirs, errors):
    viewer = make_napari_viewer()
    stack = viewer.add_image(_stack(3, 32), name="stack", rgb=True)
    gray = viewer.add_image(np.zeros((24, 24), np.uint8), name="lonely gray")
    thin = viewer.add_image(np.zeros((10, 3, 3), np.uint8), name="thin", rgb=True)
    widget = training_module.TrainingWidget(viewer, probe=False)
    _configure(widget, [], user_dirs / "bad.safetensors")
    cases = [
        ([], "no layers are selected"),
        ([gray], "has no colour to learn from"),
        ([stack, gray], "'lonely gray' .* has no colour target"),
        ([thin], "'thin'.*3 pixels wide"),
    ]
    for layers, message in cases:
        widget.layers.value = layers
        assert widget.start(start=False) is None
        assert not widget.busy
        assert errors, layers
        assert pytest.importorskip("re").search(message, errors[-1]), errors[-1]
        assert message.split()[-1] in widget.status.value
    widget.layers.value = [stack]
    widget.patch_size.value = 64
    assert widget.start(start=False) is None
    assert "larger than layer 'stack'" in errors[-1]
    widget.patch_size.value = 16
    widget.model_name.value = "beta-punks"
    assert widget.start(start=False) is None
    assert "built-in model" in errors[-1]
    assert widget.preview_layer is None
    assert not (user_dirs / "bad.safetensors").exists()


def test_a_gan_run_shows_generator_and_discriminator_losses(
    make_napari_viewer, qtbot, user_dirs, errors
):
    viewer = make_napari_viewer()
    rgb = viewer.add_image(_stack(), name="planes", rgb=True)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")
    _wait_probe(qtbot, widget)
    assert "arch:gan" in [v for _label, v in widget._start_choices()]
    _configure(widget, [rgb], user_dirs / "runs" / "gan.safetensors", steps=10, name="tiny-gan")
    widget.start_from.value = "arch:gan"
    widget.model_config.value = '{"widths": [8, 16], "stem": 4, "attention": [1]}'
    _train(qtbot, widget)
    assert errors == []
    plot = widget.loss_plot
    # 60% generator pretraining, 10% discriminator, then adversarial (the default schedule)
    assert len(plot.series["discriminator"]) >= 4
    assert 6 <= len(plot.series["train"]) < 10  # no generator step while D pretrains
    assert plot.labels["train"] == "generator"
    plot.clear()
    assert plot.labels["train"] == "train"


def test_a_folder_is_read_in_the_worker_not_in_the_viewer(
    make_napari_viewer, qtbot, user_dirs, errors, monkeypatch, tmp_path
):
    import threading

    from skimage.io import imsave

    from napari_colorize.data import layer_datasets as layers_module

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, plane in enumerate(_stack(4, 32)):
        imsave(folder / f"photo{i}.png", plane, check_contrast=False)
    readers = []
    original = layers_module.spec_datasets

    def spying(*args, **kwargs):
        readers.append(threading.current_thread() is threading.main_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(layers_module, "spec_datasets", spying)
    viewer = make_napari_viewer()
    widget = training_module.TrainingWidget(viewer, probe=False)
    out = user_dirs / "from-folder.safetensors"
    _configure(widget, [], out, steps=4, name="from-folder")
    widget.source.value = training_module.FOLDER
    widget.folder.value = str(folder)
    widget.val_fraction.value = 0.25
    events = _train(qtbot, widget)
    assert errors == []
    assert readers == [False]  # read once, by the worker
    start = next(e for e in events if type(e).__name__ == "StartEvent")
    assert (start.n_train, start.n_val) == (3, 1)  # the held-out share chosen in the widget
    assert out.is_file()
    assert "registered as 'from-folder'" in widget.status.value
