"""Colorizing image files: finding them, reading them lazily, writing results atomically.

This is the library side of ``napari-colorize colorize``: PNG and JPEG through
imageio, TIFF (8/16-bit, float, multi-page stacks, RGB) through tifffile. TIFF
inputs are memory-mapped or read through zarr where the file allows, and TIFF
outputs are written plane by plane into a memory-mapped file, so stacks larger
than memory go through. Every output is written to a temporary file and renamed
into place (:func:`napari_colorize.checkpoint.atomic_write`), so a crash or
Ctrl+C never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "TIFF_SUFFIXES",
    "ColorizeJob",
    "colorize_file",
    "find_images",
    "plan_jobs",
    "read_image",
]

#: File types read and written.
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", *TIFF_SUFFIXES)
_JPEG_QUALITY = 95


@dataclass(frozen=True)
class ColorizeJob:
    """One input file and where its colorized result goes."""

    source: Path
    target: Path


def find_images(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into image files.

    Parameters
    ----------
    paths : iterable of path-like
        Files (taken as given, whatever their suffix) and folders (their
        files with a suffix in :data:`IMAGE_SUFFIXES`, sorted, not recursive,
        hidden files skipped).

    Returns
    -------
    files : list of Path
        Without duplicates, in order.
    problems : list of (Path, str)
        Paths that do not exist, or folders without images, with the reason.
    """
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not p.name.startswith(".")
            )
            if not found:
                problems.append((path, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append((path, "no such file or folder"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return [Path(p) for p in unique], problems


def plan_jobs(
    files: list[Path], output: str | os.PathLike, *, overwrite: bool = False
) -> tuple[list[ColorizeJob], list[tuple[Path, str]]]:
    """Decide where each result goes, refusing what would overwrite something.

    ``output`` is the result file when there is one input and it has an image
    suffix (and is not an existing folder); otherwise it is a folder (made if
    needed) and each result keeps its input's file name. An input is never
    overwritten; an existing output only with ``overwrite``.

    Returns
    -------
    jobs : list of ColorizeJob
    problems : list of (Path, str)
        Inputs that get no job, with the reason.
    """
    output = Path(output).expanduser()
    as_file = len(files) == 1 and output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir()
    inputs = {p.resolve() for p in files}
    jobs: list[ColorizeJob] = []
    problems: list[tuple[Path, str]] = []
    taken: dict[Path, Path] = {}
    for source in files:
        target = output if as_file else output / source.name
        resolved = target.resolve()
        if resolved in inputs:
            problems.append(
                (source, f"the output {target} would overwrite an input; choose another -o")
            )
        elif resolved in taken:
            problems.append(
                (source, f"{taken[resolved]} already writes {target}; colorize it separately")
            )
        elif target.exists() and not overwrite:
            problems.append((source, f"{target} exists; pass --overwrite to replace it"))
        else:
            taken[resolved] = source
            jobs.append(ColorizeJob(source, target))
    return jobs, problems


# ----------------------------------------------------------------- reading


def _open_tiff(path: Path) -> Any:
    import tifffile

    try:
        # uncompressed, contiguous files: no copy at all
        return tifffile.memmap(path, mode="r")
    except (ValueError, OSError):
        pass
    try:
        import zarr

        store = tifffile.imread(path, aszarr=True)
        array = zarr.open(store, mode="r")
        if not hasattr(array, "shape"):  # a pyramid: its full-resolution level
            array = array[next(iter(array.array_keys()))]
        return array
    except Exception:  # an old zarr or an unusual file: read it whole
        return tifffile.imread(path)


def read_image(path: str | os.PathLike) -> Any:
    """Read an image or stack, lazily where the format allows.

    Parameters
    ----------
    path : path-like
        PNG, JPEG or TIFF (multi-page TIFFs are stacks).

    Returns
    -------
    array-like
        numpy array, ``np.memmap`` or zarr array.

    Raises
    ------
    ValueError
        For an unknown suffix or a file that cannot be decoded; the message
        says what went wrong.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    try:
        if suffix in TIFF_SUFFIXES:
            return _open_tiff(path)
        import imageio.v3 as iio

        return iio.imread(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"cannot read it as {suffix[1:].upper()}: {reason}") from None


# ----------------------------------------------------------------- writing


def colorize_file(
    colorizer,
    job: ColorizeJob,
    *,
    progress: Callable[[Any], None] | None = None,
) -> Path:
    """Colorize one file into ``job.target``, atomically.

    Parameters
    ----------
    colorizer : napari_colorize.inference.Colorizer or callable
        The colorizer, or a function of the input's
        :class:`~napari_colorize.images.ImageLayout` returning one (a method
        chosen per image, hints placed on its shape).
    job : ColorizeJob
    progress : callable, optional
        Called with each :class:`~napari_colorize.inference.ColorizeProgress`.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        The input cannot be read or colorized (the message says why), or a
        stack is to be written to something other than TIFF.
    """
    from . import images
    from .checkpoint import atomic_write

    array = read_image(job.source)
    layout = images.describe(array)
    if callable(colorizer) and not hasattr(colorizer, "run"):
        colorizer = colorizer(layout)
    suffix = job.target.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(
            f"cannot write {job.target.name}: use an output ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    if layout.leading_shape and suffix not in TIFF_SUFFIXES:
        raise ValueError(
            f"it is a stack of {layout.n_planes} planes {layout.shape}; "
            "write it to a .tif file (or a folder, keeping the .tif name)"
        )

    def drive(out):
        events = colorizer.run(array, out)
        while True:
            try:
                event = next(events)
            except StopIteration:
                break
            if progress is not None:
                progress(event)
        if colorizer.stopped:
            raise KeyboardInterrupt

    if suffix in TIFF_SUFFIXES:

        def write(tmp: Path) -> None:
            import tifffile

            shape = layout.output_shape
            out = tifffile.memmap(
                tmp,
                shape=shape,
                dtype=np.uint8,
                photometric="rgb",
                bigtiff=int(np.prod(shape)) > 2**31,
            )
            try:
                drive(out)
                out.flush()
            finally:
                del out

    else:
        result = np.empty(layout.output_shape, np.uint8)
        drive(result)

        def write(tmp: Path) -> None:
            import imageio.v3 as iio

            options = {"quality": _JPEG_QUALITY} if suffix in (".jpg", ".jpeg") else {}
            iio.imwrite(tmp, result, extension=suffix, **options)

    return atomic_write(job.target, write)
