"""Notice when a dock widget goes away, so that its work stops with it.

napari's close button on a dock (and ``window.remove_dock_widget``) takes the
inner widget out of the dock (``setParent(None)``) and deletes only the dock,
so the inner widget's ``destroyed`` signal may come much later or never.
"""

from __future__ import annotations

import contextlib
from functools import cache

__all__ = ["on_removed"]


@cache
def _filter_class():
    from qtpy.QtCore import QEvent, QObject, QTimer

    class RemovedFilter(QObject):
        """Calls back when the watched widget loses its parent (taken out of its dock)."""

        def __init__(self, widget, callback):
            super().__init__(widget)
            self._callback = callback

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
                # checked once control returns: moving into another container
                # (a scroll area) may pass through no parent at all
                QTimer.singleShot(0, self._check)
            return False

        def _check(self):
            with contextlib.suppress(RuntimeError):  # the widget is deleted already
                if self.parent() is not None and self.parent().parent() is None:
                    self._callback()

    return RemovedFilter


def on_removed(widget, callback) -> None:
    """Call ``callback()`` when the QWidget ``widget`` is taken out of its dock or destroyed.

    It may be called more than once; it must be idempotent.
    """
    watcher = _filter_class()(widget, lambda: callback())
    widget.installEventFilter(watcher)
    widget.destroyed.connect(lambda *_: callback())
