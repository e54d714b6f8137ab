"""The Colorize widget shows each model's card: a short line under the list, tooltips."""

from qtpy.QtCore import Qt

from napari_colorize.widgets import colorize as colorize_module


def _tooltips(widget) -> dict:
    combo = widget.model.native
    return {
        combo.itemData(i): combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
        for i in range(combo.count())
    }


def test_model_cards_beside_the_list(colorize_widget, qtbot, tiny_checkpoint):
    _viewer, widget = colorize_widget
    values = [value for _label, value in widget._model_choices()]
    assert values[-1] == colorize_module.BROWSE  # Browse... comes last
    # the chosen checkpoint file: its card from its header
    assert widget.model.value == str(tiny_checkpoint)
    assert widget.model_info.value == widget.card()["summary"]
    assert "KB" in widget.model_info.value
    qtbot.waitUntil(lambda: bool(_tooltips(widget).get(str(tiny_checkpoint))), timeout=5_000)
    tips = _tooltips(widget)
    assert tips[str(tiny_checkpoint)].startswith("tiny-alpha.safetensors\nfor: ")
    assert "checkpoint" in tips[colorize_module.BROWSE]
    # a published model: what it is for and its download size, before any download
    if "eccv16" in values:
        assert "natural photographs" in tips["eccv16"]
        assert "download: 129.0 MB" in tips["eccv16"]
    if "beta-punks" in values:  # bundled: purpose, size, measured figures
        widget.model.value = "beta-punks"
        assert widget.model_info.value.startswith("CryptoPunks 24x24 pixel art only; ")
        assert "measured: " in tips["beta-punks"]
        assert "trained on: cryptopunks" in tips["beta-punks"]
        assert "measured: " in widget.model_info.tooltip


def test_a_long_card_line_wraps_instead_of_widening_the_dock(colorize_widget):
    _viewer, widget = colorize_widget
    widget.model_info.value = ""
    narrow = widget.native.minimumSizeHint().width()
    widget.model_info.value = "natural photographs " * 20
    assert widget.native.minimumSizeHint().width() <= narrow
