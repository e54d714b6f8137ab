"""The model picker the dock widgets share: a model list, its cards, "Browse...", a probe.

A :class:`ModelPicker` holds a widget's model ComboBox (and its device
ComboBox, where the widget has one), the checkpoint files the user opened,
what is known about each entry (its card: a one-line summary under the list
and each entry's tooltip, where the widget shows them), the "Browse..." entry
that opens a file dialog (and goes back to the previous entry when the
dialog is cancelled), and the background worker that lists the devices and
models of this machine: torch and the registry are imported there, never
while napari starts. The probes of the Colorize, Training and Class
probabilities widgets are here too (:func:`colorizer_probe`,
:func:`training_probe`, :func:`classifier_probe`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from magicgui.widgets import ComboBox, Label
from napari.qt.threading import thread_worker

__all__ = [
    "CHECKPOINT_FILTER",
    "ModelPicker",
    "Probed",
    "classifier_probe",
    "colorizer_probe",
    "training_probe",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FILTER = "Model checkpoints (*.safetensors *.pt *.pth);;All files (*)"
#: Registered architectures that are not colorizers (classifiers used by them).
_NOT_COLORIZERS = ("inception",)
#: Registered architectures that are not trained from scratch: a classifier,
#: and published models that are only fine-tuned.
NOT_FROM_SCRATCH = {"inception", "eccv16", "siggraph17"}


@dataclass
class Probed:
    """What a probe found on this machine; ``None`` keeps what the picker has.

    Attributes
    ----------
    entries : list of (label, value) or None
        The model list (files opened by the user and "Browse..." are added by the picker).
    devices : list of (label, name) or None
        The devices; ``auto`` is put first by the picker.
    cards : dict
        Entry value -> what is known about it (its card).
    fallback : str or None
        The entry chosen when the current one is no longer offered.
    """

    entries: list[tuple[str, str]] | None = None
    devices: list[tuple[str, str]] | None = None
    cards: dict = field(default_factory=dict)
    fallback: str | None = None


def _file_entry(path: str) -> tuple[str, str]:
    return Path(path).name, path


class ModelPicker:
    """A dock widget's model list, device list, model cards and probe worker.

    Parameters
    ----------
    probe : callable
        Lists what this machine offers, in a worker thread; returns :class:`Probed`.
    entries : list of (label, value)
        The model list until the probe has run.
    label, name : str
        The model ComboBox's label and name.
    browse : str, optional
        The label (and value) of the last entry, which opens a file dialog.
    browse_title, file_filter : str
        The file dialog's title and filter.
    file_entry : callable, optional
        ``path -> (label, value)`` of a checkpoint file's entry (default: its name, its path).
    devices : list of (label, name), optional
        The device list until the probe has run; no device ComboBox when None.
    info : bool
        Show the chosen entry's card in a line under the list (``info``) and each
        entry's card as its tooltip.
    on_change : callable, optional
        Called with the value when an entry other than "Browse..." is chosen.
    on_probed : callable, optional
        Called after the probe's findings are in the lists.
    """

    def __init__(
        self,
        probe: Callable[[], Probed],
        *,
        entries: list[tuple[str, str]],
        label: str = "model",
        name: str = "model",
        browse: str | None = None,
        browse_title: str = "Open a model checkpoint",
        file_filter: str = CHECKPOINT_FILTER,
        file_entry: Callable[[str], tuple[str, str]] = _file_entry,
        devices: list[tuple[str, str]] | None = None,
        info: bool = False,
        on_change: Callable | None = None,
        on_probed: Callable[[Probed], None] | None = None,
    ):
        self._probe = probe
        self.entries = list(entries)
        self.files: list[str] = []  # checkpoint files the user opened
        self.cards: dict[str, dict] = {}  # entry value or checkpoint path -> card
        self.devices = list(devices or [])
        self.worker = None  # the probe worker while it runs
        self.closed = False  # set by the widget when it is gone: findings are dropped
        self._browse = browse
        self._browse_title = browse_title
        self._file_filter = file_filter
        self._file_entry = file_entry
        self._on_change = on_change
        self._on_probed_hook = on_probed
        self.combo = ComboBox(name=name, label=label, choices=self.choices)
        self._previous = self.combo.value  # chosen again when "Browse..." is cancelled
        self.device = None
        if devices is not None:
            self.device = ComboBox(name="device", label="device", choices=self.device_choices)
        self.info = Label(value="") if info else None  # unnamed: the card in one line
        self.combo.changed.connect(self._on_changed)
        if self.info is not None:
            from qtpy.QtCore import QTimer

            # items added later (a new checkpoint, a refreshed list) get their tooltip too,
            # once they hold their data: Qt announces a row before its data is set
            self._info_timer = QTimer(self.combo.native)
            self._info_timer.setSingleShot(True)
            self._info_timer.setInterval(0)
            self._info_timer.timeout.connect(self.update_info)
            self.combo.native.model().rowsInserted.connect(lambda *_: self._info_timer.start())

    # ------------------------------------------------------------ choices

    def choices(self, _widget=None) -> list[tuple[str, str]]:
        """The model list: the entries, the files opened, "Browse..." last."""
        values = [value for _label, value in self.entries]
        files = [self._file_entry(path) for path in self.files]
        files = [(label, value) for label, value in files if value not in values]
        browse = [(self._browse, self._browse)] if self._browse else []
        return [*self.entries, *files, *browse]

    def values(self) -> list[str]:
        """The values of the model list's entries."""
        return [value for _label, value in self.choices()]

    def device_choices(self, _widget=None) -> list[tuple[str, str]]:
        return self.devices

    def set_checkpoint(self, path) -> None:
        """Offer the checkpoint file ``path`` in the model list and select it."""
        path = str(path)
        if path not in self.files:
            self.files.append(path)
        self.combo.reset_choices()
        self.combo.value = self._file_entry(path)[1]

    def _on_changed(self, value=None) -> None:
        if value != self._browse or self._browse is None:
            self._previous = value
            if self.info is not None:
                self.update_info()
            if self._on_change is not None:
                self._on_change(value)
            return
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.combo.native, self._browse_title, "", self._file_filter
        )
        if path:
            self.set_checkpoint(path)
        else:
            self.combo.value = self._previous

    # ------------------------------------------------------------ probe

    def refresh(self, start: bool = True, block: bool = False):
        """List the devices and models again, in a background thread.

        Parameters
        ----------
        start : bool
            Start the worker (otherwise the caller connects and starts it).
        block : bool
            List them here and now instead (this imports torch on the calling
            thread), and return None.

        Returns
        -------
        FunctionWorker or None
        """
        if block:
            self._on_probed(self._probe())
            return None
        worker = thread_worker(self._probe, start_thread=False)()
        worker.returned.connect(self._on_probed)
        worker.finished.connect(lambda: setattr(self, "worker", None))
        self.worker = worker
        if start:
            worker.start()
        return worker

    def _on_probed(self, probed: Probed) -> None:
        if self.closed:
            return
        self.cards.update(probed.cards)
        current_model = self.combo.value
        current_device = None if self.device is None else self.device.value
        if probed.entries is not None:
            self.entries = probed.entries
        self.combo.reset_choices()
        if current_model in self.values():
            self.combo.value = current_model
        elif probed.fallback is not None:  # rather one that works than the first listed
            self.combo.value = probed.fallback
        if self.device is not None and probed.devices is not None:
            self.devices = [("auto", "auto"), *probed.devices]
            self.device.reset_choices()
            if current_device in [name for _label, name in self.devices]:
                self.device.value = current_device
        if self.info is not None:
            self.update_info()
        if self._on_probed_hook is not None:
            self._on_probed_hook(probed)

    # ------------------------------------------------------------ cards

    def card(self, value=None) -> dict | None:
        """The card of an entry (default: the chosen one); None if unknown yet."""
        value = self.combo.value if value is None else value
        if value in (None, self._browse):
            return None
        value = str(value)
        if value not in self.cards and value in self.files:
            self.cards[value] = _file_card(value)
        return self.cards.get(value)

    def update_info(self) -> None:
        """The chosen entry's card under the list, and every entry's card as its tooltip."""
        from qtpy.QtCore import Qt

        combo = self.combo.native
        for i in range(combo.count()):
            value = combo.itemData(i)
            card = self.card(value) if value != self._browse else None
            text = _card_tooltip(card) if card else ""
            if value == self._browse:
                text = "Open a .safetensors or .pt/.pth model checkpoint file"
            if combo.itemData(i, Qt.ItemDataRole.ToolTipRole) != text:
                combo.setItemData(i, text, Qt.ItemDataRole.ToolTipRole)
        card = self.card()
        self.info.value = card.get("summary", "") if card else ""
        self.info.tooltip = _card_tooltip(card) if card else None


def _file_card(path: str) -> dict:
    """The card of a checkpoint file (reads its header only)."""
    from ..cards import build_card
    from ..checkpoint import read_metadata

    try:
        meta = read_metadata(path)
    except Exception as exc:  # shown as the card: loading it would fail the same way
        return {"summary": f"unreadable checkpoint: {exc}", "purpose": str(exc)}
    return build_card(
        Path(path).name, arch=meta.arch or "", source="path", data=meta.data, extra=meta.extra,
        metrics=meta.metrics, size=Path(path).stat().st_size,
    )  # fmt: skip


def _card_tooltip(card: dict) -> str:
    from ..cards import card_lines

    name = card.get("name")
    return "\n".join([name, *card_lines(card)] if name else card_lines(card))


# ------------------------------------------------------------------ the probes


def _devices() -> list[tuple[str, str]]:
    from ..devices import available_devices

    return [(d.label, d.name) for d in available_devices()]


def _model_label(row: dict) -> tuple[str, str]:
    """``(label, name)`` of a model-menu entry; a model still to download says its size."""
    name = row["name"]
    if row.get("available", True):
        return name, name
    size = row.get("size")
    return (f"{name} (downloads {size / 1e6:.0f} MB)" if size else f"{name} (download)"), name


def colorizer_probe(methods: list[tuple[str, str]]) -> Probed:
    """The colorizers (after the training-free ``methods``), devices and model cards.

    Imports torch: run it off the main thread. A broken registry leaves the
    entries as they are (the default model and "Browse...").
    """
    devices = _devices()
    try:
        from ..cards import method_cards
        from ..registry import list_models

        rows = [
            m
            for m in list_models()
            if m.get("arch") not in _NOT_COLORIZERS
            and (m.get("available", True) or m.get("source") == "url")
        ]
        models = [_model_label(m) for m in rows]
        cards = {**method_cards(), **{m["name"]: m["card"] for m in rows if "card" in m}}
    except Exception:  # a broken registry still leaves the default and Browse...
        logger.warning("could not list the models", exc_info=True)
        models, cards = [], {}
    return Probed([*methods, *models] if models else None, devices, cards)


def training_probe() -> Probed:
    """Architectures to train, registered models to fine-tune, devices (imports torch)."""
    import importlib.util

    from ..registry import architectures, describe_architectures, list_models

    modules = {a["name"]: a["model"].partition(":")[0] for a in describe_architectures()}
    archs = []
    for arch in architectures():
        if arch in NOT_FROM_SCRATCH:
            continue
        try:
            if importlib.util.find_spec(modules[arch]) is None:
                continue
        except (ImportError, ValueError):
            continue
        archs.append(arch)
    try:
        models = [
            m["name"] for m in list_models() if m.get("available") and m.get("arch") != "inception"
        ]
    except Exception:
        logger.warning("could not list the models", exc_info=True)
        models = []
    return Probed(training_entries(archs or ["alpha", "beta"], models), _devices())


def training_entries(archs: list[str], models: list[str]) -> list[tuple[str, str]]:
    """The Training widget's start entries: new architectures, then models to fine-tune."""
    new = [(f"new {arch}", f"arch:{arch}") for arch in archs]
    tune = [(f"fine-tune {name}", f"model:{name}") for name in models]
    return [*new, *tune]


def classifier_probe() -> Probed:
    """The registry's classifiers (reads only checkpoint headers); the first usable is the
    fallback, and each one's entry of :func:`.classify.available_classifiers` its card."""
    from ..classify import available_classifiers

    return classifier_entries(available_classifiers())


def classifier_entries(classifiers: list[dict]) -> Probed:
    """The classifier list of :func:`.classify.available_classifiers` as picker entries."""
    entries = [
        (c["name"] if c["available"] else f"{c['name']} (not downloaded)", c["name"])
        for c in classifiers
    ]
    usable = [c["name"] for c in classifiers if c["available"]]
    return Probed(
        entries=entries,
        cards={c["name"]: c for c in classifiers},
        fallback=usable[0] if usable else None,
    )
