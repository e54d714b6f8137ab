"""Result layers backed by a zarr store on disk: which runs get one, and when it is removed.

A run of a lazy (dask, zarr) layer whose RGB result would exceed
:data:`napari_colorize.lazy_result.LAZY_RESULT_BYTES` is written to a store
under :func:`~napari_colorize.lazy_result.results_dir` and shown as a dask
layer reading it. The store's path is kept in the layer's metadata mark; it
is removed when no layer of the viewer reads it any more (the layer deleted,
or its data replaced by a new run), and at the latest when napari quits.
"""

from __future__ import annotations

import weakref

from ..layers import METADATA_KEY

__all__ = ["release_unused", "set_store", "store_of", "watch_removals", "writable_store"]

_STORE = "store"
_watched: weakref.WeakSet = weakref.WeakSet()


def store_of(layer) -> str | None:
    """The path of the result store ``layer`` reads, or None."""
    mark = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}
    return mark.get(_STORE)


def set_store(layer, store) -> None:
    """Record in ``layer``'s metadata mark that it reads ``store`` (None: that it reads none)."""
    metadata = dict(layer.metadata or {})
    mark = dict(metadata.get(METADATA_KEY) or {})
    if store is None:
        mark.pop(_STORE, None)
    else:
        mark[_STORE] = str(store.path)
    metadata[METADATA_KEY] = mark
    layer.metadata = metadata


def writable_store(layer):
    """The :class:`~napari_colorize.lazy_result.ResultStore` ``layer`` reads, if ours."""
    from ..lazy_result import open_store

    path = store_of(layer)
    return open_store(path) if path else None


def release_unused(layers, paths) -> list[str]:
    """Remove the stores among ``paths`` that no layer in ``layers`` reads any more."""
    from ..lazy_result import release_store

    used = {store_of(layer) for layer in layers}
    released = []
    for path in {p for p in paths if p}:
        if path not in used and release_store(path):
            released.append(path)
    return released


def _on_removed(event) -> None:
    path = store_of(event.value)
    if path:
        release_unused(event.source, [path])


def watch_removals(viewer) -> None:
    """Remove a layer's store when the layer leaves ``viewer`` (once per viewer)."""
    layers = viewer.layers
    if layers in _watched:
        return
    _watched.add(layers)
    layers.events.removed.connect(_on_removed)
