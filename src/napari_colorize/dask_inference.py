"""Colorize dask arrays lazily, on any dask scheduler, a ``dask.distributed`` cluster too.

:func:`colorize_dask` returns a dask array whose tasks each colorize whole
planes with :class:`~napari_colorize.inference.Colorizer`. What the tasks share
travels once: the model's name or path, the options and the intensity range
(computed once for the whole array, as :func:`~napari_colorize.colorize`
does, so every plane is scaled alike) form one small object in the task
graph, and each worker process builds one colorizer from it and keeps it
(:func:`cache_info`), so a model is loaded once per process, not once per
task. An in-memory ``torch.nn.Module`` (or a reference image, a guided method)
is part of that object: pickled once into the graph, sent once to each worker.

With ``temporal=True`` the planes of a sequence (the last leading axis) depend
on each other, so each sequence is one task.
"""

from __future__ import annotations

import collections
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import images
from .inference import GUIDED_METHODS

__all__ = ["cache_info", "clear_cache", "colorize_dask"]

#: Colorizers a worker process keeps (one per model and options).
_CACHE_SIZE = 4

_cache: collections.OrderedDict = collections.OrderedDict()
_cache_lock = threading.Lock()
_built = 0


@dataclass
class _Spec:
    """What every task needs to build the same colorizer; one object in the graph."""

    key: str
    model: Any
    reference: Any
    options: dict
    shared_hints: dict = field(default_factory=dict)  # name -> (H, W, C) map or HintSource


def _import_dask():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(
            "colorize_dask needs dask: pip install 'napari-colorize[distributed]'"
        ) from None
    return da


def _model_token(model, device) -> Any:
    """A key for ``model``: a name or path (and its file's date) is reused by later calls.

    An in-memory module gets a new key each call: its weights may have changed
    since (training goes on), and the workers must not keep using old ones.
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        from .inference.model_cache import model_key

        return model_key(model if model is not None else "", device)
    return uuid.uuid4().hex


def _spec_key(model, reference, options) -> str:
    from dask.base import tokenize

    token = _model_token(model, options.get("device", "auto"))
    return "colorize-spec-" + tokenize(token, reference, sorted(options.items(), key=str))


def _colorizer(spec: _Spec):
    """This process's colorizer for ``spec`` and the lock that lets one task use it at a time."""
    global _built
    with _cache_lock:
        entry = _cache.get(spec.key)
        if entry is not None:
            _cache.move_to_end(spec.key)
            return entry
        from .inference import Colorizer

        colorizer = Colorizer(spec.model, reference=spec.reference, **spec.options)
        entry = (colorizer, threading.Lock())
        _cache[spec.key] = entry
        _built += 1
        while len(_cache) > _CACHE_SIZE:
            _, (old, _) = _cache.popitem(last=False)
            old.close()
        return entry


def cache_info() -> dict:
    """What this process's cache holds: ``{"colorizers": n, "built": n_ever_built}``.

    On a cluster, ``client.run(cache_info)`` asks every worker.
    """
    with _cache_lock:
        return {"colorizers": len(_cache), "built": _built}


def clear_cache() -> None:
    """Forget this process's colorizers (their models stay in the inference cache)."""
    with _cache_lock:
        for colorizer, _ in _cache.values():
            colorizer.close()
        _cache.clear()


class _BlockHints:
    """The planes of one block of a :class:`~napari_colorize.hints.HintSource`, indexed locally."""

    def __init__(self, source, offset: tuple[int, ...], leading_shape: tuple[int, ...]):
        self.source = source
        self.offset = offset
        self.leading_shape = leading_shape
        self.spatial_shape = tuple(source.spatial_shape)

    @property
    def planes(self) -> set[tuple[int, ...]]:
        local = set()
        for plane in getattr(self.source, "planes", ()):
            index = tuple(int(p) - o for p, o in zip(plane, self.offset))
            if all(0 <= i < n for i, n in zip(index, self.leading_shape)):
                local.add(index)
        return local

    def plane(self, index=(), out=None):
        index = tuple(int(i) + o for i, o in zip(index, self.offset))
        return self.source.plane(index, out=out)

    def stack(self):
        from .hints import HintStack

        return HintStack(self)


def _colorize_block(block, *hint_blocks, spec, hint_names, value_range, rgb, block_info=None):
    """One task: colorize the planes of ``block`` (a trailing axis of 1 added to gray)."""
    n_leading = block.ndim - 3
    offset = tuple(start for start, _ in block_info[0]["array-location"][:n_leading])
    leading_shape = tuple(block.shape[:n_leading])
    hints = {}
    for name, value in spec.shared_hints.items():
        if hasattr(value, "plane") and getattr(value, "leading_shape", ()):
            value = _BlockHints(value, offset, leading_shape)
        hints[name] = value
    hints.update(zip(hint_names, hint_blocks))
    array = block if rgb else block[..., 0]
    colorizer, lock = _colorizer(spec)
    with lock:
        colorizer.hints = hints
        try:
            return colorizer.colorize(array, rgb=rgb, value_range=value_range)
        finally:
            colorizer.hints = {}


def _as_dask(array, da, n_leading: int):
    """A dask array of ``array``: one chunk per plane unless it is one already."""
    if isinstance(array, da.Array):
        return array
    array = images._as_array(array)
    chunks = (1,) * n_leading + (-1,) * (len(array.shape) - n_leading)
    return da.from_array(array, chunks=chunks)


def colorize_dask(darr, model=None, *, reference=None, rgb=None, value_range=None, **options):
    """Colorize a (large) stack lazily: a dask array of RGB computed by any dask scheduler.

    Each task colorizes whole planes: the spatial (and colour) axes are
    rechunked to whole planes, the leading axes keep their chunks (a chunk of
    several planes is one task, its planes batched through the network). Each
    process that runs tasks builds the colorizer once and keeps it
    (:func:`cache_info`); a named model or checkpoint path is loaded there,
    never sent with the tasks. The result equals
    :func:`napari_colorize.colorize` of the same array, plane for plane.

    Parameters
    ----------
    darr : dask.array.Array or array-like
        2D gray, RGB/RGBA or an nD stack (see :func:`napari_colorize.colorize`);
        numpy and zarr arrays are wrapped with :func:`dask.array.from_array`.
    model : str, path-like, torch.nn.Module or guided method, optional
        As in :func:`napari_colorize.colorize`. Pass a registered name or a
        checkpoint path for clusters: each worker loads it once. A module (and
        a ``reference``) is pickled once into the task graph and sent once to
        each worker; it must be on the CPU, or on a device every worker has.
    reference, rgb
        As in :func:`napari_colorize.colorize`.
    value_range : (float, float), optional
        Input values mapped to black and white; default
        :func:`napari_colorize.images.intensity_range` of the whole array,
        computed now (it reads a few planes) and given to every task.
    **options
        :class:`~napari_colorize.inference.Colorizer` options (``device``,
        ``tile``, ``overlap``, ``chroma_size``, ``batch_size``, ``percentiles``,
        ``temporal``, ...) and ``hints``: maps the same for every plane
        ``(H, W, 3)``, one per plane ``leading + (H, W, 3)`` (numpy or dask;
        each task gets its planes' maps), or a
        :class:`~napari_colorize.hints.HintSource` (points, shapes, labels;
        each task makes its own planes' maps). With ``temporal`` each
        sequence along the last leading axis is one task.

    Returns
    -------
    dask.array.Array
        uint8 of shape ``leading_shape + (H, W, 3)``, chunked like the input's
        leading axes with whole planes.

    Raises
    ------
    ValueError
        For an input :func:`napari_colorize.images.describe` rejects, a wrong
        hint shape, an unknown option or model name. Errors only the model
        can find (a damaged checkpoint, a bad ``tile``) surface when the
        array is computed, with the same message.
    ImportError
        Without dask installed.

    Examples
    --------
    >>> from dask.distributed import Client  # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")  # doctest: +SKIP
    >>> stack = da.from_zarr("in.zarr")  # doctest: +SKIP
    >>> colorize_dask(stack, model="beta-punks").to_zarr("out.zarr")  # doctest: +SKIP
    """
    da = _import_dask()
    import dask

    layout = images.describe(darr, rgb=rgb)
    darr = _as_dask(darr, da, len(layout.leading_shape))
    hints = options.pop("hints", None)
    if model is None:
        from .choice import default_method

        model = default_method(
            layout.spatial_shape, hints=hints is not None, reference=reference is not None
        )
    _check_options(options)
    if isinstance(model, str) and model not in GUIDED_METHODS and not os.path.exists(model):
        from .registry import get_model

        get_model(model)  # a wrong name fails now, not on every worker
    if value_range is None:
        percentiles = options.get("percentiles", images.DEFAULT_PERCENTILES)
        value_range = images.intensity_range(darr, layout, percentiles)
    else:
        value_range = images._check_range(value_range)

    n_leading = len(layout.leading_shape)
    # whole planes per task; a temporal sequence (the last leading axis) in one task
    whole = dict.fromkeys(range(n_leading, darr.ndim), -1)
    from .inference.options import temporal_strength

    if temporal_strength(options.get("temporal", False)) and n_leading:
        whole[n_leading - 1] = -1
    darr = darr.rechunk(whole)
    if not layout.rgb:
        darr = darr[..., None]
    leading_chunks = darr.chunks[:n_leading]
    spatial_chunks = tuple((n,) for n in layout.spatial_shape)

    shared, per_plane = _split_hints(hints, layout, da)
    hint_names = list(per_plane)
    hint_arrays = [
        value.rechunk(leading_chunks + spatial_chunks + ((value.shape[-1],),))
        for value in per_plane.values()
    ]
    key = _spec_key(model, reference, options)
    spec = _Spec(key, model, reference, dict(options), shared)
    # one node in the graph: sent once to each worker, not pickled into every task
    spec = dask.delayed(spec, name=key, pure=True, traverse=False)
    return da.map_blocks(
        _colorize_block,
        darr,
        *hint_arrays,
        spec=spec,
        hint_names=hint_names,
        value_range=value_range,
        rgb=layout.rgb,
        chunks=leading_chunks + spatial_chunks + ((3,),),
        dtype=np.uint8,
        meta=np.empty((0,) * (n_leading + 3), np.uint8),
        # the trailing axes (1 or 4 input channels, 3 hint channels) must not be unified
        enforce_ndim=True,
        name="colorize-" + dask.base.tokenize(key, darr, hint_arrays, value_range, shared),
    )


def _check_options(options: dict) -> None:
    """Unknown options fail now, not on a worker when the array is computed."""
    import inspect

    from .inference import Colorizer

    if "out" in options:
        raise ValueError("colorize_dask returns a lazy array: store it with .to_zarr(...)")
    known = set(inspect.signature(Colorizer).parameters) - {"model", "hints", "reference"}
    unknown = sorted(set(options) - known)
    if unknown:
        names = sorted(known | {"hints", "reference", "rgb", "value_range"})
        raise ValueError(
            f"colorize_dask got unknown option(s) {', '.join(unknown)}; use {', '.join(names)}"
        )


def _split_hints(hints, layout, da):
    """(shared, per_plane): maps or sources given whole to each task, and dask arrays of maps."""
    from .hints import HintSource

    if hints is None:
        return {}, {}
    if not isinstance(hints, Mapping):
        hints = {"hints": hints}
    shared, per_plane = {}, {}
    spatial = layout.spatial_shape
    for name, value in hints.items():
        if isinstance(value, HintSource):
            if tuple(value.leading_shape) not in ((), layout.leading_shape):
                raise ValueError(
                    f"hint {name!r} is placed on an image with leading axes "
                    f"{tuple(value.leading_shape)}, but the array has {layout.leading_shape}"
                )
            shared[name] = value
            continue
        shape = tuple(getattr(value, "shape", np.shape(value)))
        if shape[-3:-1] != spatial or shape[:-3] not in ((), layout.leading_shape):
            raise ValueError(
                f"hint {name!r} has shape {shape}; expected (H, W, C) = {(*spatial, 'C')} "
                f"or {layout.leading_shape + spatial + ('C',)}"
            )
        if len(shape) == 3:
            shared[name] = np.asarray(value)
        else:
            per_plane[name] = _as_dask(value, da, len(layout.leading_shape))
    return shared, per_plane
