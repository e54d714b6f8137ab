"""The progress event of colorizing (:meth:`napari_colorize.inference.Colorizer.run`).

Its own module so that the steps the Colorizer calls (:mod:`napari_colorize.temporal`)
can yield it without importing the Colorizer.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ColorizeProgress", "run_reporting"]


@dataclass(frozen=True)
class ColorizeProgress:
    """One progress event of :meth:`Colorizer.run`.

    Attributes
    ----------
    done, total : int
        Work steps done and in all: one per network tile of each plane plus one
        per plane for assembling its colours. ``total`` may change when the
        out-of-memory fallback re-tiles.
    plane_index : tuple of int or None
        Index into the input's leading axes of the plane just worked on
        (``()`` for a single image); None before the first plane.
    message : str
        What just happened, for a status line.
    """

    done: int
    total: int
    plane_index: tuple[int, ...] | None
    message: str = ""

    @property
    def fraction(self) -> float:
        """``done / total`` in [0, 1]."""
        return min(1.0, self.done / self.total) if self.total else 1.0


def run_reporting(colorizer, array, out, progress=None, **options):
    """Run ``colorizer.run(array, out, **options)`` to its end, each event to ``progress``.

    Parameters
    ----------
    colorizer : Colorizer
    array, out
        As for :meth:`Colorizer.run <napari_colorize.inference.Colorizer.run>`.
    progress : callable, optional
        Called with each :class:`ColorizeProgress`.
    **options
        Passed to ``run`` (``rgb``, ``value_range``, ``output``).

    Raises
    ------
    KeyboardInterrupt
        When the run was stopped (:meth:`Colorizer.request_stop`), so that a
        writer discards what it wrote.
    """
    events = colorizer.run(array, out, **options)
    while True:
        try:
            event = next(events)
        except StopIteration:
            break
        if progress is not None:
            progress(event)
    if colorizer.stopped:
        raise KeyboardInterrupt
