"""Results too large for memory: a zarr store on disk, written plane by plane, read lazily.

:class:`~napari_colorize.inference.Colorizer` writes into any array that takes
slice assignment, so a stack larger than memory is colorized into a zarr
array on disk (:func:`create_result_store`) and read back as a dask array
(:meth:`ResultStore.to_dask`). Stores live under :func:`results_dir` (a
folder of the system's temporary directory, or ``NAPARI_COLORIZE_RESULTS``);
each store's name carries the id of the process that made it, so the stores
of processes that have ended are removed by the next one
(:func:`remove_stale_stores`), and a process removes its own at exit.
"""

from __future__ import annotations

import atexit
import errno
import itertools
import os
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LAZY_RESULT_BYTES",
    "ResultStore",
    "create_result_store",
    "is_lazy",
    "open_store",
    "release_store",
    "remove_stale_stores",
    "result_nbytes",
    "results_dir",
    "store_write_error",
    "wants_lazy_result",
]

#: An RGB result larger than this, of a lazy input, is written to disk instead of memory.
LAZY_RESULT_BYTES = 256 * 2**20
#: A chunk holds about this many pixels: the rows one write of the colorizer fills.
_CHUNK_PIXELS = 1 << 20
_NAME = re.compile(r"^(?P<stem>.*)-pid(?P<pid>\d+)-(?P<n>\d+)\.zarr$")
_counter = itertools.count(1)
_own: dict[str, ResultStore] = {}
_own_lock = threading.Lock()


def results_dir() -> Path:
    """The folder of result stores.

    ``$NAPARI_COLORIZE_RESULTS`` when set, else ``napari-colorize-results`` in
    the system's temporary directory.

    Returns
    -------
    pathlib.Path
    """
    configured = os.environ.get("NAPARI_COLORIZE_RESULTS")
    if configured:
        return Path(configured).expanduser()
    return Path(tempfile.gettempdir()) / "napari-colorize-results"


def is_lazy(array: Any) -> bool:
    """Whether ``array`` is read on demand (dask, zarr, ...) rather than held in memory."""
    return not isinstance(array, np.ndarray) and hasattr(array, "shape")


def result_nbytes(shape: tuple[int, ...], dtype=np.uint8) -> int:
    """Bytes of a result of ``shape`` and ``dtype``."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def wants_lazy_result(array: Any, result_shape: tuple[int, ...], threshold: int | None = None):
    """Whether the result of colorizing ``array`` should be written to disk.

    Parameters
    ----------
    array : array-like
        The input: only lazy arrays (dask, zarr, ...) get a lazy result; a
        numpy input is in memory already.
    result_shape : tuple of int
        The RGB result's shape, ``leading + (H, W, 3)``.
    threshold : int, optional
        Bytes above which the result goes to disk; default :data:`LAZY_RESULT_BYTES`.

    Returns
    -------
    bool
    """
    threshold = LAZY_RESULT_BYTES if threshold is None else threshold
    return is_lazy(array) and result_nbytes(result_shape) > threshold


def remove_stale_stores(root: Path | None = None) -> list[Path]:
    """Remove the result stores left by processes that have ended.

    Parameters
    ----------
    root : path-like, optional
        Default :func:`results_dir`.

    Returns
    -------
    list of pathlib.Path
        The stores removed.
    """
    from .leftovers import remove_leftovers

    root = results_dir() if root is None else Path(root)
    return remove_leftovers(root, _NAME, kind="dir", dead_after_s=0.0)


@dataclass
class ResultStore:
    """A zarr array on disk that a colorization writes into, plane by plane.

    Attributes
    ----------
    path : pathlib.Path
        The store's folder (``.zarr``).
    array : zarr.Array
        Pass it as ``out`` to :meth:`Colorizer.run <napari_colorize.inference.Colorizer.run>`.
    """

    path: Path
    array: Any

    @property
    def nbytes(self) -> int:
        """Bytes of the (uncompressed) result."""
        return result_nbytes(self.array.shape, self.array.dtype)

    def to_dask(self):
        """The result as a dask array read from the store (one chunk per strip of a plane).

        Each call gives a graph of its own name, so that a cache of chunks
        (napari keeps one) never serves what the store held before.
        """
        import dask.array as da

        return da.from_zarr(self.array, name=f"napari-colorize-result-{uuid.uuid4().hex}")

    def remove(self) -> None:
        """Delete the store from disk (a store already gone is fine)."""
        with _own_lock:
            _own.pop(str(self.path), None)
        shutil.rmtree(self.path, ignore_errors=True)


def store_write_error(store: ResultStore, exc: OSError) -> OSError:
    """A one-line error for a write into ``store`` that failed (a full disk says so)."""
    where = str(store.path.parent)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        error = OSError(
            f"the disk holding {where!r} is full (the result needs up to "
            f"{store.nbytes / 1e6:.0f} MB); free space there or set NAPARI_COLORIZE_RESULTS "
            "to a folder on a disk with room"
        )
    else:
        error = OSError(
            f"cannot write the result into {str(store.path)!r} ({exc.strerror or exc}); set "
            "NAPARI_COLORIZE_RESULTS to a writable folder with room for the result"
        )
    error.errno = exc.errno  # the message has no "[Errno N]" prefix
    return error


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "result"
    return stem[:60]


def create_result_store(
    shape: tuple[int, ...], dtype=np.uint8, *, name: str = "result", root=None
) -> ResultStore:
    """Create an empty zarr array on disk for a result of ``shape``.

    Parameters
    ----------
    shape : tuple of int
        ``leading + (H, W, C)``.
    dtype : numpy dtype
        uint8 for RGB results.
    name : str
        Part of the store's folder name (e.g. the source layer's name).
    root : path-like, optional
        The folder to create it in; default :func:`results_dir`.

    Returns
    -------
    ResultStore
        Removed at the latest when this process exits.

    Raises
    ------
    OSError
        The folder cannot be created or written (the message names it).
    """
    import zarr

    root = results_dir() if root is None else Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the folder for large results {str(root)!r} ({exc.strerror or exc}); "
            "set NAPARI_COLORIZE_RESULTS to a writable folder with room for the result"
        ) from None
    remove_stale_stores(root)
    shape = tuple(int(s) for s in shape)
    height, width = shape[-3], shape[-2]
    rows = max(1, min(height, _CHUNK_PIXELS // max(1, width)))
    chunks = (1,) * (len(shape) - 3) + (rows, width, shape[-1])
    path = root / f"{_safe_stem(name)}-pid{os.getpid()}-{next(_counter)}.zarr"
    try:
        array = zarr.open_array(
            store=str(path), mode="w-", shape=shape, chunks=chunks, dtype=dtype, fill_value=0
        )
    except OSError as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise OSError(
            f"cannot create the result store {str(path)!r} ({exc.strerror or exc}); set "
            "NAPARI_COLORIZE_RESULTS to a writable folder with room for the result"
        ) from None
    store = ResultStore(path, array)
    with _own_lock:
        _own[str(path)] = store
    return store


def open_store(path) -> ResultStore | None:
    """The store at ``path`` if this process created it and it is still there, else None."""
    with _own_lock:
        store = _own.get(str(path))
    return store if store is not None and store.path.is_dir() else None


def release_store(path) -> bool:
    """Remove the store at ``path`` if this process created it; returns whether it did.

    Paths this process did not create (another session's, a user's folder)
    are left alone.
    """
    with _own_lock:
        store = _own.get(str(path))
    if store is None:
        return False
    store.remove()
    return True


@atexit.register
def _remove_own_stores() -> None:
    with _own_lock:
        stores = list(_own.values())
    for store in stores:
        store.remove()
