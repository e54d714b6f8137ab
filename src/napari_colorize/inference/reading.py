"""Reading planes and turning them into lightness: a prefetch thread and worker pools.

A stack is read one plane at a time (dask and zarr arrays are never materialised
whole) by a background thread while the network works on the previous planes;
planes become CIE L through :func:`napari_colorize.images.plane_to_lightness`,
by lookup table for 8- and 16-bit gray, in row strips otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
import threading
from collections.abc import Iterator

import numpy as np

from .. import images

__all__ = ["INLINE", "Lightness", "Prefetch", "Workers", "single_threaded_torch"]

#: Row strips of about this many pixels are converted to L at a time.
_LIGHTNESS_PIXELS = 1 << 18


def single_threaded_torch():
    import torch

    # worker threads each run torch ops on small blocks; their own intra-op
    # threads would only fight over the same cores. The count is asked first:
    # torch sets up a thread's count on its first use, from the process default,
    # and would otherwise undo this one once that default is set back
    torch.get_num_threads()
    torch.set_num_threads(1)


class Prefetch:
    """Run an iterator in a background thread, at most ``depth`` items ahead."""

    _END = object()

    def __init__(self, iterator: Iterator, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(iterator,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._halt.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, iterator) -> None:
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((self._END, exc))

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, tuple) and len(item) == 2 and item[0] is self._END:
                raise item[1]
            yield item

    def close(self) -> None:
        self._halt.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=10)


def strip_layout(layout: images.ImageLayout, rows: int, width: int) -> images.ImageLayout:
    """The layout of ``rows`` full-width rows of one plane (to convert a plane in strips)."""
    channels = (layout.shape[-1],) if layout.rgb else ()
    return dataclasses.replace(
        layout, shape=(rows, width, *channels), spatial_shape=(rows, width), leading_shape=()
    )


class Workers:
    """A lazily started pool of threads that run single-threaded torch (or numpy) work.

    Many small, cache-sized pieces spread over a few threads are several times
    faster than torch's own threading over large tensors for chains of cheap
    elementwise steps, and degrade gracefully when other processes share the
    cores.
    """

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        self._pool = None

    def map(self, fn, items) -> None:
        items = list(items)
        if self.threads == 1 or len(items) == 1:
            for item in items:
                fn(item)
            return
        if self._pool is None:
            self._pool = self._start_pool()
        for future in [self._pool.submit(fn, item) for item in items]:
            future.result()

    def _start_pool(self):
        """The pool, its threads all started, and torch's thread settings as they were.

        Each worker makes torch single-threaded for itself, but
        ``torch.set_num_threads`` also sets the default of every thread not yet
        started and MKL's process-wide count: left so, the next thread to run a
        network (napari's next worker, a training run) would run it on one
        core. So the pool's threads are started now, and the caller's count is
        set again once they have.
        """
        import contextlib
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import torch

        threads_here = torch.get_num_threads()
        pool = ThreadPoolExecutor(
            self.threads, thread_name_prefix="colorize", initializer=single_threaded_torch
        )
        # each waits for the others, so that the pool has to start all its threads
        started = threading.Barrier(self.threads)

        def wait():
            # a slow start breaks the barrier: the count is set back all the same
            with contextlib.suppress(threading.BrokenBarrierError):
                started.wait(timeout=10.0)

        for future in [pool.submit(wait) for _ in range(self.threads)]:
            future.result()
        torch.set_num_threads(threads_here)
        return pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


INLINE = Workers(1)


class Lightness:
    """Plane -> L in [0, 100] through ``images.plane_to_lightness``, fast and in bounded memory.

    Gray integer planes of at most 16 bits go through a lookup table made by
    ``plane_to_lightness`` itself (the same values, many times faster); other
    planes are converted in row strips. Strips run on ``workers``.
    """

    def __init__(self, layout, value_range, workers: Workers = INLINE):
        self.layout = layout
        self.value_range = value_range
        self.workers = workers
        self.lut = None
        dtype = layout.dtype
        if not layout.rgb and (dtype in (np.uint8, np.uint16) or dtype.kind == "b"):
            n = 2 if dtype.kind == "b" else 1 << (8 * dtype.itemsize)
            values = np.arange(n, dtype=np.uint8 if dtype.kind == "b" else dtype)
            side = math.isqrt(n)
            shape = (side, n // side)
            values = values.reshape(shape).astype(dtype)
            lut_layout = dataclasses.replace(
                layout, shape=shape, spatial_shape=shape, leading_shape=()
            )
            self.lut = images.plane_to_lightness(values, lut_layout, value_range).ravel()

    def __call__(self, plane: np.ndarray, index=None) -> np.ndarray:
        if self.lut is not None and plane.dtype.kind == "b":
            plane = plane.view(np.uint8)
        height, width = self.layout.spatial_shape
        rows = max(1, _LIGHTNESS_PIXELS // width)
        if self.lut is None and rows >= height:
            return images.plane_to_lightness(plane, self.layout, self.value_range, index=index)
        out = np.empty((height, width), dtype=np.float32)

        def strip(r0):
            r1 = min(height, r0 + rows)
            if self.lut is not None:
                # in strips: take() makes an intp copy of the indices
                np.take(self.lut, plane[r0:r1], out=out[r0:r1])
            else:
                sub = strip_layout(self.layout, r1 - r0, width)
                out[r0:r1] = images.plane_to_lightness(
                    plane[r0:r1], sub, self.value_range, index=index
                )

        self.workers.map(strip, range(0, height, rows))
        return out
