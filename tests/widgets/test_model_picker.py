"""The model picker the Colorize, Training and Class probabilities docks share."""

import pytest

from napari_colorize.widgets._model_picker import ModelPicker, Probed, classifier_entries

BROWSE = "Browse..."


@pytest.fixture
def picker(qtbot):
    changes = []
    found = Probed(
        entries=[("a", "a"), ("b (download)", "b")], devices=[("CPU", "cpu")],
        cards={"b": {"summary": "the b model"}},
    )  # fmt: skip
    picker = ModelPicker(
        lambda: found, entries=[("a", "a")], browse=BROWSE, devices=[("auto", "auto")],
        info=True, on_change=changes.append,
        file_entry=lambda path: (f"file {path.rsplit('/', 1)[-1]}", f"file:{path}"),
    )  # fmt: skip
    picker.changes, picker.found = changes, found
    return picker


def test_browse_comes_last_and_a_cancelled_dialog_goes_back(picker, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    assert picker.values() == ["a", BROWSE]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    picker.combo.value = BROWSE
    assert picker.combo.value == "a"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("/x/m.pt", ""))
    picker.combo.value = BROWSE
    assert picker.combo.value == "file:/x/m.pt"
    assert ("file m.pt", "file:/x/m.pt") in picker.choices()
    assert picker.values()[-1] == BROWSE
    assert BROWSE not in picker.changes  # the widget hears of real entries only


def test_the_probe_keeps_the_choice_and_puts_auto_first(picker, qtbot):
    probed = []
    picker._on_probed_hook = probed.append
    picker.combo.value = "a"
    worker = picker.refresh(start=False)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start()
    assert picker.worker is None
    assert probed == [picker.found]
    assert picker.values() == ["a", "b", BROWSE]
    assert picker.combo.value == "a"
    assert picker.device.choices == ("auto", "cpu")
    picker.combo.value = "b"
    assert picker.info.value == "the b model"  # the card's line under the list


def test_a_gone_choice_falls_back_and_a_closed_picker_drops_findings(qtbot):
    classifiers = [
        {"name": "gone", "available": False},
        {"name": "usable", "available": True},
    ]
    found = classifier_entries(classifiers)
    picker = ModelPicker(lambda: found, entries=[("old", "old")])
    picker.refresh(block=True)
    assert picker.combo.value == "usable"  # one that works, not the first listed
    assert dict(picker.choices())["gone (not downloaded)"] == "gone"
    assert picker.cards["gone"]["available"] is False
    picker.entries = [("old", "old")]
    picker.closed = True
    picker.refresh(block=True)
    assert picker.entries == [("old", "old")]
