"""Colorize grayscale images with neural networks, in napari or from Python.

Importing this package is cheap: it imports neither torch nor Qt. The heavy
modules load when a function that needs them is first called.
"""

from ._version import __version__

__all__ = ["__version__", "colorize", "colorize_dask"]


def colorize(array, model=None, **options):
    """Colorize a grayscale (or color) array with a model, a colour reference or hints.

    Parameters
    ----------
    array : array-like
        2D grayscale, RGB/RGBA (last axis 3 or 4) or an nD stack whose last two
        axes (or last two before the channel axis) are spatial. numpy, dask and
        zarr arrays are accepted; lazy arrays are read plane by plane.
    model : str or path-like, optional
        A registered model name (see ``napari-colorize models``), a checkpoint
        file, ``"propagate"`` (spread ``hints`` along lightness, no network) or
        ``"reference"``. Default: chosen for the image (see
        :func:`napari_colorize.choice.default_method`).
    **options
        ``reference`` (colour image(s) to learn colours from, in seconds),
        ``hints`` (hint maps, or points, shapes or labels as
        :class:`napari_colorize.hints.PointHints`,
        :class:`napari_colorize.scribbles.ShapeHints` or
        :class:`napari_colorize.scribbles.LabelHints`; with a network that
        does not take hints they correct its colours locally), and the
        options of :class:`napari_colorize.inference.Colorizer` (``device``,
        ``tile``, ``overlap``, ``chroma_size``, ``batch_size``).

    Returns
    -------
    numpy.ndarray
        RGB uint8 with the input's spatial shape (and leading axes) plus a
        trailing axis of 3.

    Examples
    --------
    >>> rgb = colorize(gray_section, reference=stained_rgb)  # doctest: +SKIP
    >>> rgb = colorize(gray_photo, model="propagate", hints=point_hints)  # doctest: +SKIP
    """
    from .inference import colorize as _colorize

    return _colorize(array, model=model, **options)


def colorize_dask(darr, model=None, **options):
    """Colorize a dask array lazily, for any dask scheduler (a ``dask.distributed`` cluster too).

    Parameters
    ----------
    darr : dask.array.Array or array-like
        As ``array`` in :func:`colorize`; each task colorizes whole planes.
    model : str, path-like or torch.nn.Module, optional
        As in :func:`colorize`. A name or checkpoint path is loaded once by each
        worker process; a module is pickled once into the task graph.
    **options
        The options of :func:`colorize` (``reference``, ``hints``, ``value_range``,
        ``chroma_size``, ``tile``, ``device``, ``temporal``, ...).

    Returns
    -------
    dask.array.Array
        RGB uint8, ``leading_shape + (H, W, 3)``, equal to :func:`colorize`'s result.

    Examples
    --------
    >>> rgb = colorize_dask(da.from_zarr("in.zarr"), model="beta-punks")  # doctest: +SKIP
    >>> rgb.to_zarr("out.zarr")  # doctest: +SKIP
    """
    from .dask_inference import colorize_dask as _colorize_dask

    return _colorize_dask(darr, model=model, **options)
