"""Live mode of the Colorize widget: re-colorize whenever the hints are edited.

:class:`LiveHints` follows the hints layer's edit events (a point added, moved
or recoloured, a stroke drawn, labels painted), waits for the edits to pause
(a short debounce), then re-colorizes the current plane in its own worker (the
whole stack, with "consistent across planes"). A newer edit asks the running
one to stop, and a generation counter lets only the latest run touch the
output layer. The widget decides what a run does and shows its result.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING

from napari.layers import Image

from ._hint_layers import hint_digest, hint_events
from ._status_text import short_error

if TYPE_CHECKING:
    from ._colorize_job import ColorizeJob, JobResult

__all__ = ["LIVE_DEBOUNCE_MS", "LiveHints"]

logger = logging.getLogger(__name__)

#: Live mode waits this long after the last hint edit before re-colorizing.
LIVE_DEBOUNCE_MS = 100


class LiveHints:
    """Re-colorizes the current plane of a Colorize widget on every edit of its hints.

    Parameters
    ----------
    widget : ColorizeWidget
        The owner. Read here: its ``live`` check box, ``hints`` and ``image``
        choices, ``takes_hints``, ``busy`` and ``status``; called here:
        ``_make_job(layer, live=True)``, ``_job_worker(job)`` (an unstarted
        worker running the job), ``_show_result(job, result)`` and ``_report(exc)``.
    """

    def __init__(self, widget):
        from qtpy.QtCore import QTimer

        self._widget = widget
        self.layer = None  # the hints layer whose events are connected
        self._edits = 0  # edits of the hints, for layers without a cheap digest (Labels)
        self._generation = 0  # the latest live run; older ones may not touch layers
        self._job: ColorizeJob | None = None
        self.workers: set = set()
        self._signature = None
        #: Live runs started, applied to the output and dropped as stale (for tests, benchmarks).
        self.counts = {"started": 0, "applied": 0, "dropped": 0}
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.setInterval(LIVE_DEBOUNCE_MS)
        self.timer.timeout.connect(self.run)

    # ------------------------------------------------------------ the hints layer

    def follow(self, layer) -> None:
        """Listen to the edits of the hints layer ``layer`` (None: of none)."""
        self.unfollow()
        if layer is not None:
            for name in hint_events(layer):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self.hints_edited)
        self.layer = layer

    def unfollow(self) -> None:
        if self.layer is None:
            return
        for name in hint_events(self.layer):
            emitter = getattr(self.layer.events, name, None)
            if emitter is not None:
                with contextlib.suppress(TypeError, ValueError, RuntimeError):
                    emitter.disconnect(self.hints_edited)
        self.layer = None

    def toggled(self, _value=None) -> None:
        """The live check box changed: run now (after the debounce) or stop waiting."""
        if self._widget.live.value:
            self.hints_edited()
        else:
            self.timer.stop()

    def hints_edited(self, _event=None) -> None:
        """The hints changed: re-colorize after a pause in the edits (live mode)."""
        self._edits += 1
        if self.wanted():
            self.timer.start()  # restarts: the run waits for the edits to pause

    def wanted(self) -> bool:
        """Whether live mode is on and has hints and an image to work with."""
        widget = self._widget
        return (
            bool(widget.live.value)
            and widget.takes_hints
            and widget.hints.value is not None
            and isinstance(widget.image.value, Image)
        )

    # ------------------------------------------------------------ runs

    def _signature_of(self, job: ColorizeJob):
        digest = hint_digest(self._widget.hints.value)
        if digest is None:  # no cheap fingerprint (Labels): every edit counts
            digest = ("edits", self._edits)
        method = id(job.method) if job.method is not None else None
        return (job.source, job.model, method, job.device, str(job.chroma_size), job.plane, digest)

    def run(self, *, force: bool = False):
        """Re-colorize the current plane with the current hints (what live mode does).

        Parameters
        ----------
        force : bool
            Run even if nothing changed since the last live run.

        Returns
        -------
        GeneratorWorker or None
            The started worker, or None when there was nothing to do.
        """
        widget = self._widget
        if not (widget.takes_hints and widget.hints.value is not None):
            return None
        if widget.busy:  # a full run is going on: try again once it is done
            self.timer.start()
            return None
        try:
            job = widget._make_job(widget.image.value, live=True)
        except Exception as exc:
            widget.status.value = f"live: {exc}"
            return None
        signature = self._signature_of(job)
        if signature == self._signature and not force:
            return None
        self._signature = signature
        self._generation += 1
        generation = self._generation
        if self._job is not None:  # stale now: stop it early, its result is dropped
            self._job.request_stop()
        worker = widget._job_worker(job)
        worker.returned.connect(functools.partial(self._on_returned, generation, job))
        worker.finished.connect(functools.partial(self._on_finished, worker, job))
        self._job = job
        self.workers.add(worker)
        self.counts["started"] += 1
        what = "the stack" if job.temporal else "the current plane"
        widget.status.value = f"live: colorizing {what}..."
        worker.start()
        return worker

    def _on_returned(self, generation: int, job: ColorizeJob, result: JobResult) -> None:
        widget = self._widget
        if generation != self._generation:
            self.counts["dropped"] += 1
            return
        if result.error is not None:
            self._signature = None  # a retry after the next edit may succeed
            widget.status.value = f"live: error: {short_error(result.error)}"
            widget.status.tooltip = str(result.error)
            logger.info("live colorization failed: %s", result.error)
            return
        if result.rgb is None:
            return
        try:
            layer = widget._show_result(job, result)
        except Exception as exc:
            widget._report(exc)
            return
        self.counts["applied"] += 1
        widget.status.value = f"live: updated {layer.name}"

    def _on_finished(self, worker, job: ColorizeJob) -> None:
        self.workers.discard(worker)
        if self._job is job:
            self._job = None

    def abandon(self) -> None:
        """The widget is gone: stop listening and waiting, drop whatever still returns."""
        with contextlib.suppress(RuntimeError):  # the timer's C++ side may be gone already
            self.timer.stop()
        self.unfollow()
        self._generation += 1  # whatever still returns is stale
        if self._job is not None:
            self._job.request_stop()
        for worker in list(self.workers):
            with contextlib.suppress(TypeError, RuntimeError):
                worker.returned.disconnect()
            worker.quit()
