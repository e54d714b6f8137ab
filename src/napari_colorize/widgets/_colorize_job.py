"""One run of the Colorize widget: what it needs (gathered on the main thread) and its worker.

:func:`run_job` is the generator a ``thread_worker`` drives: it fetches
published weights, builds the :class:`~napari_colorize.inference.Colorizer`
and colorizes into memory or, for a large lazy stack, into a zarr store on
disk (:mod:`napari_colorize.lazy_result`) whose dask view becomes the layer.
Nothing here touches a layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..layers import split_lab

__all__ = [
    "ColorizeJob",
    "JobResult",
    "discard_job_store",
    "discard_result",
    "lazy_lab",
    "run_job",
]

logger = logging.getLogger(__name__)


@dataclass
class ColorizeJob:
    """One run: everything the worker needs, gathered on the main thread."""

    source: str
    array: Any
    rgb: bool
    model: str
    device: str
    chroma_size: int | str
    value_range: tuple | None
    add_lab: bool
    outputs: dict  # add_image kwargs of the colorized layer, by role
    hints: Any = None  # None, or a callable giving the hint map(s) (run in the worker)
    method: Any = None  # a fitted guided method (a ReferenceColorizer) used instead of model
    plane: tuple | None = None  # the stack plane a single-plane run colorizes
    live: bool = False
    temporal: bool = False  # consistent colours along the stack's scroll axis
    lazy: bool = False  # write the result to a zarr store on disk, shown as dask
    leading_shape: tuple = ()  # the stack axes of ``array``
    colorizer: Any = None
    store: Any = None  # the ResultStore of a lazy run
    stop: bool = False

    def request_stop(self) -> None:
        """Ask the run to stop after the current tile batch or plane."""
        self.stop = True
        if self.colorizer is not None:
            self.colorizer.request_stop()


@dataclass
class JobResult:
    """What a run gives back: RGB (numpy or dask), L, a, b, or the error."""

    rgb: Any = None
    lab: tuple | None = None
    error: BaseException | None = None
    store: Any = None  # the ResultStore the lazy ``rgb`` reads
    #: which precision "auto" chose and why ("" where nothing was chosen)
    precision: str = ""


def discard_result(result: JobResult) -> None:
    """Free what a result holds on disk (a result nobody will show)."""
    if result is not None and result.store is not None:
        result.store.remove()


def discard_job_store(job: ColorizeJob, *_args) -> None:
    """Remove the store of a run that was aborted (its result will never be shown)."""
    if job.store is not None:
        job.store.remove()


def lazy_lab(rgb) -> tuple:
    """L, a and b of a dask RGB array, computed chunk by chunk when shown."""
    import numpy as np

    return tuple(
        rgb.map_blocks(
            lambda block, i=i: split_lab(block)[i], drop_axis=rgb.ndim - 1, dtype=np.float32
        )
        for i in range(3)
    )


def _colorize(job: ColorizeJob):
    """Generator: colorize into memory or into the job's store; the result, or None if stopped."""
    if not job.lazy:
        return (yield from job.colorizer.run(job.array, rgb=job.rgb, value_range=job.value_range))
    from .. import images
    from ..lazy_result import create_result_store, store_write_error

    layout = images.describe(job.array, rgb=job.rgb)
    job.store = create_result_store(
        (*layout.leading_shape, *layout.spatial_shape, 3), name=job.source
    )
    try:
        out = yield from job.colorizer.run(
            job.array, job.store.array, rgb=job.rgb, value_range=job.value_range
        )
    except OSError as exc:
        raise store_write_error(job.store, exc) from None
    return None if out is None else job.store.to_dask()


def run_job(job: ColorizeJob):
    """Generator run by the worker thread: yields progress events, returns a :class:`JobResult`."""
    try:
        from ..inference import Colorizer
        from ..registry import fetch_weights, needs_download

        if needs_download(job.model):  # published weights: fetched once, with progress
            yield from fetch_weights(job.model)
            if job.stop:
                return JobResult()
        # 0 means full resolution, which Colorizer spells None
        chroma_size = job.chroma_size if job.chroma_size else None
        hints = job.hints() if job.hints is not None else None
        job.colorizer = Colorizer(
            job.method if job.method is not None else job.model,
            device=job.device,
            chroma_size=chroma_size,
            hints=hints,
            temporal=job.temporal,
        )
        if job.stop:
            return JobResult()
        rgb = yield from _colorize(job)
        if job.stop or rgb is None:
            discard_job_store(job)
            return JobResult()
        lab = None
        if job.add_lab:
            lab = lazy_lab(rgb) if job.lazy else split_lab(rgb)
        colorizer = job.colorizer
        precision = ""
        if getattr(colorizer, "precision_reason", ""):
            precision = f"precision {colorizer.precision_used}: {colorizer.precision_reason}"
        return JobResult(rgb=rgb, lab=lab, store=job.store, precision=precision)
    except GeneratorExit:  # the worker was aborted: nobody will show the result
        discard_job_store(job)
        raise
    except Exception as exc:  # reported to the user by the main thread
        logger.debug("colorization failed", exc_info=True)
        discard_job_store(job)
        return JobResult(error=exc)
