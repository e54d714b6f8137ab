"""OME-Zarr in and out: reading one level lazily with its axes, colorizing it into an RGB OME-Zarr.

An OME-Zarr image is read through ``ome_zarr_models`` (its metadata checked)
as a dask array of one level; a channel axis of one entry is dropped, so the
gray image has the remaining axes (time, z, y, x, ...). The result keeps the
axes' names, units and coordinate transformations and gets a channel axis
``c`` of 3 (red, green, blue), placed by NGFF's rule (after time, before
space): see :mod:`napari_colorize.ome_zarr_pyramid`, which writes it as a
multiscale pyramid without holding the image in memory. What made the result
(model, options, versions, source) is stored in the group's attributes under
``"napari-colorize"``.

Needs the ``ome-zarr`` extra: ``pip install 'napari-colorize[ome-zarr]'``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ome_zarr_pyramid import PyramidSpec, extend_levels, require_ome_zarr, write_pyramid

__all__ = [
    "OmeZarrImage",
    "colorize_ome_zarr",
    "describe_colorizer",
    "image_path",
    "is_ome_zarr",
    "open_ome_zarr",
    "read_ome_zarr",
    "write_rgb_ome_zarr",
]

ZARR_SUFFIX = ".zarr"


def _attributes(path: Path) -> dict:
    """A zarr group's (OME) attributes from its JSON, or {}."""
    for name in ("zarr.json", ".zattrs"):
        try:
            attrs = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if name == "zarr.json":
            attrs = attrs.get("attributes", {}) if isinstance(attrs, dict) else {}
            attrs = attrs.get("ome", attrs) if isinstance(attrs, dict) else {}
        if isinstance(attrs, dict):
            return attrs
    return {}


def image_path(path: str | os.PathLike) -> Path:
    """The image group of an OME-Zarr: ``path`` itself, or the first image of a
    bioformats2raw layout (``path/0``)."""
    path = Path(path)
    if "bioformats2raw.layout" in _attributes(path) and "multiscales" in _attributes(path / "0"):
        return path / "0"
    return path


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding an OME-Zarr multiscale image.

    A bioformats2raw layout (images ``0``, ``1``, ... in one folder) counts,
    meaning its first image. Reads only the group's JSON (no zarr or ome-zarr
    import), so it is cheap and works without the ``ome-zarr`` extra installed.
    """
    path = Path(path)
    return path.is_dir() and "multiscales" in _attributes(image_path(path))


@dataclass(frozen=True)
class OmeZarrImage:
    """The metadata of an OME-Zarr image (its first multiscale).

    Attributes
    ----------
    path : Path
    version : str
        NGFF version, "0.4" or "0.5".
    axes : list of dict
        ``{"name", "type", "unit"}`` per axis.
    paths : list of str
        The levels' array paths, full resolution first.
    shapes : list of tuple of int
    dtype : numpy.dtype
    transforms : list of list of dict
        Each level's coordinate transformations.
    global_transforms : list of dict or None
    name : str or None
    """

    path: Path
    version: str
    axes: list[dict]
    paths: list[str]
    shapes: list[tuple[int, ...]]
    dtype: np.dtype
    transforms: list[list[dict]]
    global_transforms: list[dict] | None
    name: str | None

    @property
    def channel_axis(self) -> int | None:
        """Index of the axis of type ``channel`` (or named ``c`` without a type), or None."""
        for i, axis in enumerate(self.axes):
            if axis.get("type") == "channel" or (axis.get("type") is None and axis["name"] == "c"):
                return i
        return None


def _transforms(items) -> list[dict] | None:
    if items is None:
        return None
    out = []
    for item in items:
        data = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        if "path" in data and data.get("path"):
            raise ValueError(
                "coordinate transformations stored in a separate file are not supported; "
                "write them into the metadata"
            )
        out.append({k: v for k, v in data.items() if v is not None})
    return out


def open_ome_zarr(path: str | os.PathLike) -> OmeZarrImage:
    """Read and check an OME-Zarr image's metadata.

    Parameters
    ----------
    path : path-like
        The image's folder (the group holding ``multiscales``).

    Returns
    -------
    OmeZarrImage

    Raises
    ------
    ValueError
        Not an OME-Zarr image (a plate, labels, invalid metadata) or the
        ``ome-zarr`` extra is missing; the message says which.
    """
    require_ome_zarr()
    import zarr
    from ome_zarr_models import open_ome_zarr as open_model
    from ome_zarr_models.v04.image import Image as Image04
    from ome_zarr_models.v05.image import Image as Image05

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such OME-Zarr folder")
    path = image_path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
        model = open_model(group)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ValueError(f"not a valid OME-Zarr image: {reason}") from None
    if isinstance(model, Image05):
        version, multiscale = "0.5", model.ome_attributes.multiscales[0]
    elif isinstance(model, Image04):
        version, multiscale = "0.4", model.ome_attributes.multiscales[0]
    else:
        raise ValueError(
            f"it is an OME-Zarr {type(model).__name__}, not an image; give the path of one image "
            "inside it"
        )
    axes = [{"name": a.name, "type": a.type, "unit": a.unit} for a in multiscale.axes]
    paths = [d.path for d in multiscale.datasets]
    shapes = [tuple(int(s) for s in group[p].shape) for p in paths]
    return OmeZarrImage(
        path=path,
        version=version,
        axes=axes,
        paths=paths,
        shapes=shapes,
        dtype=np.dtype(group[paths[0]].dtype),
        transforms=[_transforms(d.coordinateTransformations) for d in multiscale.datasets],
        global_transforms=_transforms(multiscale.coordinateTransformations),
        name=multiscale.name,
    )


def _check_level(image: OmeZarrImage, level) -> int:
    n = len(image.paths)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < n:
        shapes = ", ".join(f"{k}: {'x'.join(map(str, s))}" for k, s in enumerate(image.shapes))
        choices = "0" if n == 1 else f"0 to {n - 1}"
        raise ValueError(
            f"there is no level {level!r}: its levels are {shapes}; pass --level {choices}"
        )
    return int(level)


def read_ome_zarr(path: str | os.PathLike, level: int = 0) -> tuple[Any, OmeZarrImage]:
    """One level of an OME-Zarr image as a lazy gray dask array.

    Parameters
    ----------
    path : path-like
    level : int
        0 is full resolution; see ``OmeZarrImage.shapes``.

    Returns
    -------
    array : dask.array.Array
        The level with a channel axis of one entry dropped (spatial axes last).
    image : OmeZarrImage

    Raises
    ------
    ValueError
        No such level, several channels, or not an OME-Zarr image.
    """
    import dask.array as da
    import zarr

    image = open_ome_zarr(path)
    level = _check_level(image, level)
    group = zarr.open_group(str(image.path), mode="r")
    array = da.from_zarr(group[image.paths[level]])
    at = image.channel_axis
    if at is not None:
        channels = array.shape[at]
        if channels != 1:
            raise ValueError(
                f"it has {channels} channels (axis {image.axes[at]['name']!r}); napari-colorize "
                "colorizes one gray channel: save the channel to colorize as its own image"
            )
        array = array[(slice(None),) * at + (0,)]
    return array, image


def describe_colorizer(colorizer, model=None) -> dict:
    """What made a result, as JSON-safe values: model, its training, the options.

    Parameters
    ----------
    colorizer : napari_colorize.inference.Colorizer
    model : str or path-like, optional
        The model's name or file as the user gave it.

    Returns
    -------
    dict
    """
    meta = getattr(colorizer, "meta", None)
    method = getattr(colorizer, "method", None)
    if model is None or not isinstance(model, (str, os.PathLike)):
        model = getattr(method, "name", None) or type(getattr(colorizer, "model", None)).__name__
    about: dict[str, Any] = {"model": str(model)}
    if meta is not None:
        about["architecture"] = meta.arch
        about["trained_on"] = meta.data
        about["model_version"] = meta.version
    options = {
        "device": str(getattr(colorizer, "device", "")),
        "tile": getattr(colorizer, "tile", None),
        "overlap": getattr(colorizer, "overlap", None),
        "chroma_size": getattr(colorizer, "chroma_size", None),
        "batch_size": getattr(colorizer, "batch_size", None),
        "temporal": getattr(colorizer, "temporal", None),
        "percentiles": getattr(colorizer, "percentiles", None),
        "hints": bool(getattr(colorizer, "hints", None)),
    }
    about["options"] = json.loads(json.dumps(options, default=str))
    return json.loads(json.dumps(about, default=str))


def _about(about: Mapping | None) -> dict:
    from datetime import datetime, timezone

    from ._version import __version__

    out = {
        "software": "napari-colorize",
        "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out.update(json.loads(json.dumps(dict(about or {}), default=str)))
    return out


def _drive(colorizer, array, view, progress) -> None:
    from .inference.progress import run_reporting

    run_reporting(colorizer, array, view, progress, rgb=False)


def colorize_ome_zarr(
    source,
    target: str | os.PathLike,
    model=None,
    *,
    level: int = 0,
    levels: int | None = None,
    colorizer=None,
    about: Mapping | None = None,
    overwrite: bool = False,
    progress: Callable[[Any], None] | None = None,
    **options,
) -> Path:
    """Colorize an OME-Zarr image (or a gray array) into an RGB OME-Zarr.

    Level ``level`` of the source is colorized plane by plane into level 0 of
    ``target``; the lower levels follow the source's pyramid below that level
    (its shapes and transformations), or halve y and x when it has none.
    Axes' names, units and coordinate transformations are kept; a channel
    axis ``c`` of 3 is added before the spatial axes (scale 1). The NGFF
    version of an OME-Zarr source is kept (0.4 or 0.5); other sources give
    0.5 with axes ``y, x`` (``z, y, x`` and ``t, z, y, x`` for stacks).

    Parameters
    ----------
    source : path-like or array-like
        An OME-Zarr image folder, or a gray image or stack (numpy, dask,
        zarr; up to 4 axes, named ``y, x``, ``z, y, x``, ``t, z, y, x``).
    target : path-like
        The OME-Zarr folder to write (e.g. ``result.ome.zarr``).
    model : str, path-like or torch.nn.Module, optional
        As in :func:`napari_colorize.colorize`; ignored when ``colorizer`` is given.
    level : int
        The source level to colorize (0: full resolution).
    levels : int, optional
        Number of levels to write; default as described above.
    colorizer : Colorizer or callable, optional
        A ready :class:`~napari_colorize.inference.Colorizer`, or a function of
        the input's :class:`~napari_colorize.images.ImageLayout` returning one.
    about : mapping, optional
        Recorded in the metadata with the model, options and versions
        (e.g. ``{"model": "beta-punks"}`` when ``colorizer`` is given).
    overwrite : bool
        Replace an existing ``target`` once the new one is complete.
    progress : callable, optional
        Called with each :class:`~napari_colorize.inference.ColorizeProgress`.
    **options
        :class:`~napari_colorize.inference.Colorizer` options (``hints``,
        ``reference``, ``device``, ``tile``, ...).

    Returns
    -------
    Path
        ``target``: level 0 colorized, the lower levels averaged from it.

    Raises
    ------
    ValueError
        A bad level, several channels, invalid metadata or a missing extra;
        the message says what and how to fix it.
    FileExistsError
        ``target`` exists and ``overwrite`` is False.
    """
    from . import images

    require_ome_zarr()
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    if isinstance(source, (str, os.PathLike)):
        if not is_ome_zarr(source):
            raise ValueError(f"{source} is not an OME-Zarr image (no multiscales metadata)")
        array, image = read_ome_zarr(source, level)
        spec = _spec_of(image, level)
    else:
        if level:
            raise ValueError(f"--level {level} is for OME-Zarr inputs; this image has one level")
        array = source
        spec = _plain_spec(tuple(int(s) for s in array.shape))
    layout = images.describe(array, rgb=False)
    if colorizer is None:
        from .inference import Colorizer

        if model is None:
            from .choice import default_method

            model = default_method(
                layout.spatial_shape,
                hints=options.get("hints") is not None,
                reference=options.get("reference") is not None,
            )
        colorizer = Colorizer(model, **options)
    elif callable(colorizer) and not hasattr(colorizer, "run"):
        colorizer = colorizer(layout)
    recorded = describe_colorizer(colorizer, model)
    named = isinstance(source, (str, os.PathLike))
    spec.about = _about(
        {
            **recorded,
            "source": str(source) if named else type(source).__name__,
            "source_level": level,
            **dict(about or {}),
        }
    )
    spec = extend_levels(spec, levels)
    return write_pyramid(
        spec, target, lambda view: _drive(colorizer, array, view, progress), overwrite=overwrite
    )


def _spec_of(image: OmeZarrImage, level: int) -> PyramidSpec:
    """The output's spec: the source's axes and levels from ``level`` on, channels dropped."""
    keep = [i for i in range(len(image.axes)) if i != image.channel_axis]
    shapes = [tuple(s[i] for i in keep) for s in image.shapes[level:]]
    transforms = []
    for level_transforms in image.transforms[level:]:
        kept = []
        for t in level_transforms:
            kind = t.get("type")
            if kind in ("scale", "translation") and kind in t:
                kept.append({"type": kind, kind: [float(t[kind][i]) for i in keep]})
        transforms.append(kept)
    global_transforms = None
    if image.global_transforms:
        global_transforms = [
            {"type": t["type"], t["type"]: [float(t[t["type"]][i]) for i in keep]}
            if t.get("type") in ("scale", "translation")
            else dict(t)
            for t in image.global_transforms
        ]
    # a pyramid that does not shrink by whole factors is not followed below that level
    n = 1
    while n < len(shapes) and all(
        a >= b and abs(a / max(1, round(a / b)) - b) < 1
        for a, b in zip(shapes[n - 1], shapes[n], strict=True)
    ):
        n += 1
    return PyramidSpec(
        axes=[dict(image.axes[i]) for i in keep],
        shapes=shapes[:n],
        transforms=transforms[:n],
        version=image.version,
        name=image.name,
        global_transforms=global_transforms,
    )


def _plain_spec(shape: tuple[int, ...], names: Sequence[str] | None = None) -> PyramidSpec:
    """Axes for an array without metadata: ``y, x`` and ``z``/``t`` before them."""
    default = {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("t", "z", "y", "x")}
    if names is None:
        if len(shape) not in default:
            raise ValueError(
                f"a gray image of shape {shape} has no OME-Zarr axes (y, x with up to z and t "
                "before them); write an image or stack of 2 to 4 axes"
            )
        names = default[len(shape)]
    return _spec_from(shape, names)


def _spec_from(
    shape: tuple[int, ...],
    names: Sequence[str],
    units: Sequence[str | None] | None = None,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
) -> PyramidSpec:
    n = len(shape)
    for what, values in (
        ("axes", names),
        ("units", units),
        ("scale", scale),
        ("translate", translate),
    ):
        if values is not None and len(values) != n:
            raise ValueError(f"{what} has {len(values)} entries for an image of {n} axes {shape}")
    names = [str(name) for name in names]
    if len(set(names)) != n:
        raise ValueError(f"axis names must differ, got {names}")
    axes = []
    for i, name in enumerate(names):
        kind = "time" if name.lower() in ("t", "time") else None
        if i >= n - 2 or name.lower() == "z":
            kind = "space"
        unit = units[i] if units is not None else None
        axes.append({"name": name, "type": kind, "unit": unit or None})
    scale = [float(s) for s in (scale if scale is not None else [1.0] * n)]
    translate = [float(t) for t in (translate if translate is not None else [0.0] * n)]
    transforms = [
        [{"type": "scale", "scale": scale}, {"type": "translation", "translation": translate}]
    ]
    return PyramidSpec(axes=axes, shapes=[shape], transforms=transforms, version="0.5")


def write_rgb_ome_zarr(
    rgb,
    target: str | os.PathLike,
    *,
    axes: Sequence[str] | None = None,
    units: Sequence[str | None] | None = None,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    levels: int | None = None,
    about: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an RGB result (e.g. a napari layer's data) as an OME-Zarr pyramid.

    Parameters
    ----------
    rgb : array-like
        uint8 ``leading + (H, W, 3)``: numpy, dask or zarr (copied plane by
        plane, never loaded whole).
    target : path-like
        The OME-Zarr folder (e.g. ``result.ome.zarr``).
    axes : sequence of str, optional
        Names of the axes without the colour axis (a layer's
        ``axis_labels``); default (also for napari's default labels ``-3,
        -2, -1``) ``y, x`` with ``z`` and ``t`` before them.
        ``t``/``time`` are time axes, ``z`` and the last two are spatial.
    units : sequence of str, optional
        Unit per axis (a layer's ``units``, e.g. ``"micrometer"``; pint units
        are written by name, ``"pixel"`` as no unit).
    scale, translate : sequence of float, optional
        Pixel size and origin per axis (a layer's ``scale`` and ``translate``).
    levels : int, optional
        Number of pyramid levels; default: halve until the largest side is at most 256.
    about : mapping, optional
        What made it (model, options, source), stored under ``"napari-colorize"``.
    overwrite : bool
        Replace an existing ``target``.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    ValueError
        Not uint8 RGB, or axes/units/scale that do not fit its axes.
    FileExistsError
        ``target`` exists and ``overwrite`` is False.
    """
    require_ome_zarr()
    shape = tuple(int(s) for s in rgb.shape)
    if len(shape) < 3 or shape[-1] != 3 or np.dtype(rgb.dtype) != np.uint8:
        raise ValueError(
            f"expected RGB uint8 of shape (..., H, W, 3), got {np.dtype(rgb.dtype)} {shape}"
        )
    gray_shape = shape[:-1]
    if axes is None or all(re.fullmatch(r"-?\d+", str(name)) for name in axes):
        axes = [a["name"] for a in _plain_spec(gray_shape).axes]  # napari's default labels
    if units is not None:  # pint units (napari's layer.units); napari's "pixel" is no unit
        units = [None if u is None or str(u) in ("", "pixel") else str(u) for u in units]
    spec = _spec_from(gray_shape, axes, units, scale, translate)
    spec.about = _about(about)
    spec = extend_levels(spec, levels)

    def fill(view) -> None:
        for index in np.ndindex(*gray_shape[:-2]):
            view[index] = np.asarray(rgb[index])

    return write_pyramid(spec, target, fill, overwrite=overwrite)
