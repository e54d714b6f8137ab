"""Colorizing zarr arrays on a dask cluster: connecting to one, writing results chunk by chunk.

This is the library side of ``napari-colorize colorize in.zarr -o out.zarr
[--scheduler ADDRESS | --workers N]``: the input is read lazily with
:func:`dask.array.from_zarr`, colorized by
:func:`~napari_colorize.dask_inference.colorize_dask` and written with
:func:`dask.array.to_zarr` block by block, so no process ever holds the whole
array. The result goes to a temporary folder beside the target that is renamed
into place when complete, and removed on any failure or interruption.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["check_paths", "colorize_zarr", "connect", "is_zarr"]

#: Largest side of a stored result chunk: whole planes are computed, stored in pieces.
STORE_CHUNK = 1024
_INSTALL = "pip install 'napari-colorize[distributed]'"
#: How long to try reaching a scheduler.
CONNECT_TIMEOUT = "10s"


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zarr array or group: a folder named ``*.zarr`` or holding metadata."""
    path = Path(path)
    if not path.is_dir():
        return False
    if path.suffix.lower() == ".zarr":
        return True
    return any((path / name).is_file() for name in (".zarray", ".zgroup", "zarr.json"))


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``dask.distributed`` client for the block, or None for dask's local threads.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or the path of a
        scheduler file (``dask scheduler --scheduler-file FILE``).
    workers : int, optional
        Start a local cluster of this many worker processes (one thread each)
        for the block instead.

    Yields
    ------
    distributed.Client or None
        The client, set as dask's default scheduler within the block.

    Raises
    ------
    ValueError
        Both or a non-positive ``workers`` given, or the scheduler cannot be reached.
    ImportError
        ``dask.distributed`` is not installed.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give either --scheduler ADDRESS or --workers N, not both")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"--workers must be a number of processes >= 1, got {workers}")
    if scheduler is None and workers is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(f"--scheduler and --workers need dask.distributed: {_INSTALL}") from None
    if workers is not None:
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    where = {"scheduler_file": scheduler} if os.path.isfile(scheduler) else {"address": scheduler}
    try:
        client = Client(**where, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(
            f"cannot reach the dask scheduler at {scheduler} ({reason}); start one with "
            "`dask scheduler` and `dask worker ADDRESS`, or use --workers N for a local cluster"
        ) from None
    with client:
        yield client


def _open(source: Path):
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(source), mode="r")
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot open {source} as zarr: {reason}") from None
    if not hasattr(node, "shape"):
        from .ome_zarr import is_ome_zarr

        if is_ome_zarr(source):
            raise ValueError(
                f"{source} is an OME-Zarr image: leave out --scheduler/--workers to colorize it "
                f"with its metadata, or name one level's array (e.g. {source / '0'}) to "
                "colorize that as a plain zarr array on the cluster"
            )
        arrays = sorted(name for name, _ in node.arrays())
        named = f" (it holds {', '.join(arrays)})" if arrays else ""
        raise ValueError(
            f"{source} is a zarr group, not an array{named}; name the array inside it, "
            f"e.g. {source / (arrays[0] if arrays else '0')}"
        )
    return da.from_zarr(node)


def _store_chunks(result) -> tuple:
    """Whole leading chunks, spatial axes in pieces of at most :data:`STORE_CHUNK`."""
    *leading, (height,), (width,), (channels,) = result.chunks
    return (*(c[0] for c in leading), min(height, STORE_CHUNK), min(width, STORE_CHUNK), channels)


def check_paths(
    source: str | os.PathLike, target: str | os.PathLike, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """The absolute ``(source, target)`` of :func:`colorize_zarr`, checked before any work.

    Raises
    ------
    ValueError
        ``target`` is not named ``*.zarr`` (or is ``*.ome.zarr``), exists without
        ``overwrite``, or lies in ``source``.
    """
    source, target = Path(source).absolute(), Path(target).absolute()
    if target.suffix.lower() != ".zarr":
        raise ValueError(f"cannot write {target.name}: a zarr result needs a name ending in .zarr")
    if target.name.lower().endswith(".ome.zarr"):
        raise ValueError(
            f"cannot write {target.name}: a zarr array colorized by dask gives a plain zarr "
            "array; name it OUT.zarr (OME-Zarr pyramids come from OME-Zarr or image inputs "
            "without --scheduler/--workers)"
        )
    if target.exists() and not overwrite:
        raise ValueError(f"{target} exists; pass --overwrite to replace it")
    if target == source or source in target.parents:
        raise ValueError(f"the output {target} would overwrite its input {source}")
    return source, target


def colorize_zarr(
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    model=None,
    overwrite: bool = False,
    progress: bool = False,
    **options,
) -> Path:
    """Colorize a zarr array into a new zarr array, block by block, on dask's current scheduler.

    Parameters
    ----------
    source : path-like
        A zarr array (a folder; an array inside a group: ``group.zarr/name``).
    target : path-like
        The result folder, ``*.zarr``: RGB uint8, ``leading + (H, W, 3)``, with
        the model and options in its attributes (``"napari-colorize"``).
    model, **options
        As in :func:`~napari_colorize.dask_inference.colorize_dask`.
    overwrite : bool
        Replace an existing ``target``.
    progress : bool
        Show a progress bar (dask's, or distributed's on a cluster).

    Returns
    -------
    Path
        ``target``, complete: written under a temporary name, then renamed.

    Raises
    ------
    ValueError
        The input is no zarr array or cannot be colorized, or ``target`` exists.

    Notes
    -----
    On a cluster the workers read ``source`` and write ``target`` themselves:
    both must be on a file system every worker sees (paths are made absolute).
    """
    from . import images
    from .dask_inference import colorize_dask

    source, target = check_paths(source, target, overwrite=overwrite)
    array = _open(source)
    if callable(options.get("hints")):  # hints placed on the input's shape (a CSV's points)
        options["hints"] = options["hints"](images.describe(array))
    result = colorize_dask(array, model=model, **options)
    result = result.rechunk(_store_chunks(result))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        store = result.to_zarr(str(tmp), compute=False)
        _compute(store, progress)
        import zarr

        written = zarr.open(str(tmp), mode="r+")
        written.attrs["napari-colorize"] = {
            "source": str(source),
            "model": model if isinstance(model, (str, type(None))) else type(model).__name__,
            "options": {k: v for k, v in options.items() if _plain(v)},
        }
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _compute(store, progress: bool) -> None:
    """Compute ``store`` on the default scheduler (a client where one is active)."""
    import dask

    client = None
    with contextlib.suppress(ImportError, ValueError):
        from distributed import default_client

        client = default_client()
    if client is not None:
        future = client.compute(store)
        try:
            if progress:
                from distributed import progress as show

                show(future)
            future.result()
        except BaseException:
            future.cancel()  # Ctrl+C, SIGTERM, a failed task: the cluster stops writing too
            raise
        return
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            dask.compute(store)
    else:
        dask.compute(store)
