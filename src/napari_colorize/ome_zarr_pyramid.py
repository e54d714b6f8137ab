"""Writing an RGB image as an OME-Zarr multiscale pyramid, lazily, into a folder appearing whole.

The channel axis ``c`` (3 entries: red, green, blue) goes where NGFF puts it,
after a time axis and before the spatial ones (``t, c, z, y, x``), and the
``omero`` metadata colours the channels red, green and blue with windows of
0-255, so napari-ome-zarr shows them as three additive layers that look like
the RGB image. Level 0 is filled plane by plane through a channel-last view
(:class:`ChannelLastView`, what :class:`~napari_colorize.inference.Colorizer`
writes into); each lower level is computed from the one above, chunk by
chunk, with dask. Metadata is written through ``ome_zarr.writer`` and checked
with ``ome_zarr_models`` before the folder is renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ChannelLastView",
    "PyramidSpec",
    "remove_stale_folders",
    "require_ome_zarr",
    "write_pyramid",
]

#: Largest side of a chunk of the spatial axes.
CHUNK = 512
#: Generated levels halve y and x until the largest side is at most this.
SMALLEST = 256
_CHANNELS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
_INSTALL = "pip install 'napari-colorize[ome-zarr]'"


def require_ome_zarr():
    """Import ``ome_zarr`` and ``ome_zarr_models``, or say how to install them.

    Raises
    ------
    ValueError
        One line naming the missing package and the install command.
    """
    try:
        import dask.array  # noqa: F401
        import ome_zarr.writer  # noqa: F401
        import ome_zarr_models  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            f"OME-Zarr needs the {exc.name or 'ome-zarr'} package, which is not installed: "
            f"{_INSTALL}"
        ) from None


@dataclass
class PyramidSpec:
    """What an RGB OME-Zarr is made of, the channel axis left out.

    Attributes
    ----------
    axes : list of dict
        ``{"name", "type", "unit"}`` per axis of the image without channels
        (``type`` and ``unit`` may be None); the last two are y and x.
    shapes : list of tuple of int
        Shape of each level without channels, level 0 first.
    transforms : list of list of dict
        Each level's ``scale`` (and ``translation``) transformations, one
        value per axis of ``axes``.
    version : {"0.4", "0.5"}
        NGFF version: 0.4 is zarr format 2, 0.5 zarr format 3.
    name : str or None
        The multiscale's name.
    global_transforms : list of dict or None
        Transformations applying to every level.
    about : dict
        Stored in the group's attributes under ``"napari-colorize"``.
    """

    axes: list[dict]
    shapes: list[tuple[int, ...]]
    transforms: list[list[dict]]
    version: str = "0.5"
    name: str | None = None
    global_transforms: list[dict] | None = None
    about: dict = field(default_factory=dict)

    @property
    def channel_axis(self) -> int:
        """Where ``c`` goes: before the first spatial axis (after time and custom axes)."""
        types = [axis.get("type") for axis in self.axes]
        return types.index("space") if "space" in types else len(self.axes) - 2


def extend_levels(spec: PyramidSpec, levels: int | None) -> PyramidSpec:
    """Add levels halving y and x (or drop levels) to have ``levels`` of them.

    ``None``: keep the given levels if there are several, else halve until the
    largest side is at most :data:`SMALLEST`. Translations move by half an
    input pixel per halving, as the mean of 2x2 pixels sits at their centre.
    """
    shapes, transforms = list(spec.shapes), [list(t) for t in spec.transforms]
    if levels is None:
        if len(shapes) > 1:
            return spec
        levels = 1
        height, width = shapes[0][-2:]
        while max(height, width) > SMALLEST and min(height, width) >= 2:
            height, width, levels = -(-height // 2), -(-width // 2), levels + 1
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be a whole number >= 1, got {levels!r}")
    del shapes[levels:], transforms[levels:]
    while len(shapes) < levels:
        shape, previous = shapes[-1], transforms[-1]
        if min(shape[-2:]) < 2:
            break
        factors = (1,) * (len(shape) - 2) + (2, 2)
        shapes.append(tuple(-(-s // f) for s, f in zip(shape, factors, strict=True)))
        scale = _vector(previous, "scale", len(shape), 1.0)
        shift = _vector(previous, "translation", len(shape), 0.0)
        transforms.append(
            [
                {"type": "scale", "scale": [s * f for s, f in zip(scale, factors, strict=True)]},
                {
                    "type": "translation",
                    "translation": [
                        t + (f - 1) / 2 * s for t, s, f in zip(shift, scale, factors, strict=True)
                    ],
                },
            ]
        )
    return PyramidSpec(
        spec.axes, shapes, transforms, spec.version, spec.name, spec.global_transforms, spec.about
    )


def _vector(transforms: list[dict], kind: str, n: int, default: float) -> list[float]:
    for transform in transforms:
        if transform.get("type") == kind:
            return [float(v) for v in transform[kind]]
    return [default] * n


def _with_channel(transforms: list[dict] | None, at: int) -> list[dict] | None:
    """Transformations with the channel axis inserted (scale 1, translation 0)."""
    if transforms is None:
        return None
    out = []
    for transform in transforms:
        kind = transform.get("type")
        if kind in ("scale", "translation") and kind in transform:
            values = [float(v) for v in transform[kind]]
            values.insert(at, 1.0 if kind == "scale" else 0.0)
            out.append({"type": kind, kind: values})
        else:
            out.append(dict(transform))  # "identity"
    return out


class ChannelLastView:
    """A channel-last ``(..., y, x, 3)`` window onto a channel-first zarr array.

    :class:`~napari_colorize.inference.Colorizer` writes results channel-last,
    in strips of rows of one plane (``view[(*index, rows)] = strip``); the
    strips of a plane are gathered and written once the plane is complete, so
    each chunk is written once. Other keys are written straight through.

    Parameters
    ----------
    array : zarr.Array
        The level-0 array, channels at ``channel_axis``.
    channel_axis : int
    """

    def __init__(self, array, channel_axis: int):
        self.array = array
        self.channel_axis = channel_axis
        shape = list(array.shape)
        channels = shape.pop(channel_axis)
        self.shape = (*shape, channels)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self._planes: dict[tuple, list] = {}

    def _to_array_key(self, key: tuple) -> tuple:
        key = key + (slice(None),) * (self.ndim - len(key))
        return (*key[: self.channel_axis], key[-1], *key[self.channel_axis : -1])

    def __setitem__(self, key, value) -> None:
        key = key if isinstance(key, tuple) else (key,)
        lead = self.ndim - 3
        index, rest = key[:lead], key[lead:]
        if (
            len(index) == lead
            and all(isinstance(i, (int, np.integer)) for i in index)
            and len(rest) <= 1
            and all(isinstance(r, slice) and r.step in (None, 1) for r in rest)
        ):
            height = self.shape[-3]
            r0, r1, _ = (rest[0] if rest else slice(None)).indices(height)
            index = tuple(int(i) for i in index)
            entry = self._planes.get(index)
            if entry is None:
                entry = self._planes[index] = [np.zeros(self.shape[-3:], self.dtype), 0]
            entry[0][r0:r1] = value
            entry[1] += r1 - r0
            if entry[1] >= height:
                del self._planes[index]
                self.array[self._to_array_key(index)] = np.moveaxis(entry[0], -1, 0)
            return
        # any other key: through at once (the channel axis moved to its place)
        selected = np.broadcast_to(np.zeros((), bool), self.shape)[key]
        value = np.broadcast_to(np.asarray(value, self.dtype), selected.shape)
        kept = sum(not isinstance(k, (int, np.integer)) for k in key[: self.channel_axis])
        self.array[self._to_array_key(key)] = np.moveaxis(value, -1, kept)

    def flush(self) -> None:
        """Write planes that were only partly assigned (the rest stays 0)."""
        for index, (plane, _) in list(self._planes.items()):
            self.array[self._to_array_key(index)] = np.moveaxis(plane, -1, 0)
        self._planes.clear()


def _chunks(shape: Sequence[int], channel_axis: int) -> tuple[int, ...]:
    chunks = [1] * len(shape)
    chunks[channel_axis] = shape[channel_axis]
    chunks[-2:] = [min(CHUNK, shape[-2]), min(CHUNK, shape[-1])]
    return tuple(max(1, c) for c in chunks)


def _create(group, path: str, shape, channel_axis: int, axis_names, version: str):
    options: dict[str, Any] = {
        "shape": tuple(shape),
        "chunks": _chunks(shape, channel_axis),
        "dtype": np.uint8,
        "fill_value": 0,
    }
    if version == "0.4":
        options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}  # NGFF 0.4
    else:
        options["dimension_names"] = list(axis_names)
    return group.create_array(path, **options)


def _downsample(src, shape: tuple[int, ...], chunks: tuple[int, ...]):
    """The mean over blocks of ``src`` (a dask array) that gives ``shape``, edges repeated."""
    import dask.array as da

    factors = {}
    for axis, (have, want) in enumerate(zip(src.shape, shape, strict=True)):
        factor = max(1, round(have / want))
        need = want * factor
        if need < have:
            src = src[(slice(None),) * axis + (slice(0, need),)]
        elif need > have:
            widths = [(0, 0)] * src.ndim
            widths[axis] = (0, need - have)
            src = da.pad(src, widths, mode="edge")
        factors[axis] = factor
    src = src.rechunk(tuple(c * factors[a] for a, c in enumerate(chunks)))
    mean = da.coarsen(np.mean, src, factors, dtype=np.float32)
    return da.clip(da.round(mean), 0, 255).astype(np.uint8)


def write_pyramid(
    spec: PyramidSpec,
    target: str | os.PathLike,
    fill: Callable[[ChannelLastView], None],
    *,
    overwrite: bool = False,
) -> Path:
    """Write an RGB OME-Zarr: level 0 by ``fill``, the others from it, atomically.

    Parameters
    ----------
    spec : PyramidSpec
    target : path-like
        The OME-Zarr folder (e.g. ``result.ome.zarr``).
    fill : callable
        Called with the :class:`ChannelLastView` of level 0
        (``spec.shapes[0] + (3,)``, uint8) to write into.
    overwrite : bool
        Replace an existing ``target`` (only once the new one is complete).

    Returns
    -------
    Path
        ``target``, its metadata validated.

    Raises
    ------
    FileExistsError
        ``target`` exists and ``overwrite`` is False.
    ValueError
        Metadata that OME-Zarr does not allow (the message says what).
    """
    require_ome_zarr()
    import dask.array as da
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    _check_replaceable(target)  # said before the work, not after it
    if spec.version not in ("0.4", "0.5"):
        raise ValueError(f"OME-Zarr version {spec.version!r}: write 0.4 or 0.5")
    names = [axis["name"] for axis in spec.axes]
    if "c" in names:
        raise ValueError(f"the image already has an axis named 'c' ({names}); rename it first")
    at = spec.channel_axis
    axes = [{k: v for k, v in axis.items() if v is not None} for axis in spec.axes]
    axes.insert(at, {"name": "c", "type": "channel"})
    axis_names = [axis["name"] for axis in axes]
    fmt = FormatV04() if spec.version == "0.4" else FormatV05()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_folders(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        group = zarr.open_group(str(tmp), mode="w-", zarr_format=fmt.zarr_format)
        shapes = [(*s[:at], 3, *s[at:]) for s in spec.shapes]
        level0 = _create(group, "0", shapes[0], at, axis_names, spec.version)
        view = ChannelLastView(level0, at)
        fill(view)
        view.flush()
        for k in range(1, len(shapes)):
            above = da.from_zarr(group[str(k - 1)])
            array = _create(group, str(k), shapes[k], at, axis_names, spec.version)
            da.store(_downsample(above, shapes[k], array.chunks), array, lock=False)
        datasets = [
            {"path": str(k), "coordinateTransformations": _with_channel(t, at)}
            for k, t in enumerate(spec.transforms)
        ]
        metadata = {
            "method": "mean over blocks of the level above (dask.array.coarsen)",
            "omero": {
                "rdefs": {"model": "color"},
                "channels": [
                    {
                        "label": label,
                        "color": color,
                        "active": True,
                        "window": {"min": 0, "max": 255, "start": 0, "end": 255},
                    }
                    for label, color in _CHANNELS
                ],
            },
        }
        extra = {}
        if spec.global_transforms:
            extra["coordinateTransformations"] = _with_channel(spec.global_transforms, at)
        write_multiscales_metadata(
            group, datasets, fmt=fmt, axes=axes, name=spec.name, metadata=metadata
        )
        if extra:  # the multiscale-wide transformations, which the writer takes no argument for
            _add_to_multiscale(group, spec.version, extra)
        group.attrs["napari-colorize"] = spec.about
        _validate(tmp)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _add_to_multiscale(group, version: str, entries: dict) -> None:
    attrs = dict(group.attrs)
    ome = attrs["ome"] if version == "0.5" else attrs
    ome["multiscales"][0].update(entries)
    group.attrs.update(attrs)


def _validate(path: Path) -> None:
    """Check the written metadata with ome-zarr-models; a failure is our bug, said in one line."""
    import zarr
    from ome_zarr_models import open_ome_zarr

    try:
        open_ome_zarr(zarr.open_group(str(path), mode="r"))
    except Exception as exc:
        first = " ".join(str(exc).split())[:300]
        raise ValueError(f"the OME-Zarr metadata written is not valid: {first}") from None


def remove_stale_folders(target: str | os.PathLike, *, min_age_s: float = 60.0) -> list[Path]:
    """Remove the temporary folders of ``target`` left by killed runs.

    Only ``.NAME.PID.XXXXXXXX.tmp`` and ``.NAME.PID.XXXXXXXX.old`` folders
    beside ``target`` whose process has ended and that were last modified at
    least ``min_age_s`` seconds ago (another machine sharing the folder may
    have that PID) are removed.

    Returns
    -------
    list of Path
        The folders removed.
    """
    import re

    from .leftovers import remove_leftovers

    target = Path(target)
    name = re.escape(target.name)
    pattern = re.compile(rf"^\.{name}\.(?P<pid>\d+)\.[0-9a-f]{{8}}\.(tmp|old)$")
    return remove_leftovers(target.parent, pattern, kind="dir", dead_after_s=min_age_s)


def _check_replaceable(target: Path) -> None:
    """Only an empty folder or a zarr store is replaced: never a folder of someone's files."""
    if not target.is_dir():
        return
    names = {p.name for p in target.iterdir()}
    if names and not names & {"zarr.json", ".zgroup", ".zarray", ".zattrs"}:
        raise FileExistsError(
            f"{target} is a folder of other files, not a zarr store; it is not replaced even "
            "with --overwrite: choose another output name"
        )


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    if not overwrite:
        raise FileExistsError(f"{target} exists (written meanwhile?); pass --overwrite")
    if not target.is_dir():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.rename(target, old)
        os.rename(tmp, target)
        with contextlib.suppress(OSError):
            old.unlink()
        return
    _check_replaceable(target)
    old = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
