"""Colorizing image files: finding them, reading them lazily, writing results atomically.

This is the library side of ``napari-colorize colorize``. Files are read by
:func:`napari_colorize.image_files.read_image`, the one reader (TIFF stacks
memory-mapped or through zarr, OME-Zarr lazily). PNG and JPEG results are
written through imageio, TIFF results plane by plane into a memory-mapped
file whose blocks are reserved first (a full disk is an error, not a bus
error), so stacks larger than memory go through. Every output is written to
a temporary file and renamed into place
(:func:`napari_colorize.atomic.atomic_write`), so a crash or Ctrl+C never
leaves half a file.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .image_files import IMAGE_SUFFIXES, TIFF_SUFFIXES, read_image
from .leftovers import remove_leftovers

__all__ = [
    "IMAGE_SUFFIXES",
    "TIFF_SUFFIXES",
    "ColorizeJob",
    "colorize_file",
    "find_images",
    "plan_jobs",
    "read_image",
    "remove_stale_temporaries",
]

_JPEG_QUALITY = 95
#: Suffixes of image types that are not written: an output named so is a mistake, not a folder.
_OTHER_IMAGE_SUFFIXES = (
    ".bmp", ".gif", ".webp", ".jp2", ".j2k", ".jpx", ".tga", ".ppm", ".pgm", ".pbm", ".pnm",
    ".ico", ".heic", ".heif", ".avif", ".exr", ".hdr", ".dng", ".svg", ".jxl", ".psd",
)  # fmt: skip
#: Temporary files of :func:`napari_colorize.atomic.atomic_write`: ``.NAME.PID.HEX.tmp``.
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


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
        Files (taken as given, whatever their suffix), OME-Zarr image folders,
        and other folders (their files with a suffix in :data:`IMAGE_SUFFIXES`
        and their OME-Zarr images, sorted, not recursive, hidden ones skipped).

    Returns
    -------
    files : list of Path
        Without duplicates, in order.
    problems : list of (Path, str)
        Paths that do not exist, or folders without images, with the reason.
    """
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    from .ome_zarr import is_ome_zarr

    for raw in paths:
        path = Path(raw).expanduser()
        if is_ome_zarr(path):  # an OME-Zarr folder is one image
            files.append(path)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if ((p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or is_ome_zarr(p))
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
    suffix = output.suffix.lower()
    as_file = len(files) == 1 and suffix in IMAGE_SUFFIXES and not output.is_dir()
    as_file = as_file or (len(files) == 1 and suffix == ".zarr")  # an OME-Zarr result
    supported = ", ".join(IMAGE_SUFFIXES)
    reason = None
    if not as_file and not output.is_dir():
        if suffix in _OTHER_IMAGE_SUFFIXES:
            reason = f"cannot write {suffix} files; name the output with one of {supported}"
        elif suffix in (*IMAGE_SUFFIXES, ".zarr"):
            reason = f"{len(files)} inputs need a folder as -o, not the file name {output.name}"
        elif output.exists():
            reason = (
                f"{output} exists and is not a folder; give a file name ending in one of "
                f"{supported}, or a folder"
            )
    if reason is not None:
        return [], [(source, reason) for source in files]
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


# ----------------------------------------------------------------- temporaries


def remove_stale_temporaries(folder: str | os.PathLike, *, min_age_s: float = 60.0) -> list[Path]:
    """Remove temporary files left in ``folder`` by killed runs.

    Only files named like :func:`~napari_colorize.atomic.atomic_write`'s
    temporaries (``.NAME.PID.XXXXXXXX.tmp``) are removed, and only those whose
    process has ended and that were last modified at least ``min_age_s``
    seconds ago (another machine sharing the folder may have that PID).

    Parameters
    ----------
    folder : path-like
    min_age_s : float
        Younger files are kept.

    Returns
    -------
    list of Path
        The files removed.
    """
    return remove_leftovers(folder, _TEMPORARY, kind="file", dead_after_s=min_age_s)


# ----------------------------------------------------------------- writing


def colorize_file(
    colorizer,
    job: ColorizeJob,
    *,
    progress: Callable[[Any], None] | None = None,
    overwrite: bool = True,
    level: int = 0,
    about: dict | None = None,
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
    overwrite : bool
        Replace an existing ``job.target``; if False, a target that exists
        when the result is complete (another run wrote it meanwhile) is kept
        and ``FileExistsError`` raised.
    level : int
        The level of an OME-Zarr input to colorize (0: full resolution).
    about : dict, optional
        What made the result (e.g. the model's name), recorded in an OME-Zarr result.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        The input cannot be read or colorized (the message says why), or a
        stack is to be written to something other than TIFF.
    OSError
        The result cannot be written (e.g. the disk is full); no file is left.
    """
    from . import images
    from .atomic import atomic_write
    from .ome_zarr import colorize_ome_zarr, is_ome_zarr, read_ome_zarr

    if level and not is_ome_zarr(job.source):
        raise ValueError(f"--level {level} is for OME-Zarr inputs; it has one level")
    if job.target.suffix.lower() == ".zarr":
        source = job.source if is_ome_zarr(job.source) else read_image(job.source)
        return colorize_ome_zarr(
            source, job.target, colorizer=colorizer, level=level, overwrite=overwrite,
            about={"source": str(job.source), **(about or {})}, progress=progress,
        )  # fmt: skip
    array = read_ome_zarr(job.source, level)[0] if level else read_image(job.source)
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
        from .inference.progress import run_reporting

        run_reporting(colorizer, array, out, progress)

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
                _reserve(tmp, layout.output_shape)
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
            # Our own file object, closed here: given a name, imageio closes the file in
            # its plugin's close(), and when that fails (a full disk) once more at garbage
            # collection, printing "Exception ignored in ... __del__".
            with open(tmp, "wb") as f:
                iio.imwrite(f, result, extension=suffix, **options)

    try:
        return atomic_write(job.target, write, exclusive=not overwrite)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        full = OSError(
            f"no space left on the device for {job.target} "
            f"({_size(layout.output_shape)} needed); nothing was written"
        )
        full.errno = errno.ENOSPC
        raise full from None


def _size(shape: tuple[int, ...]) -> str:
    return f"{int(np.prod(shape)) / 1e6:.1f} MB"


def _reserve(path: Path, shape: tuple[int, ...]) -> None:
    """Allocate a memory-mapped file's blocks now, so a full disk raises ENOSPC here.

    Writing through a memory map into a sparse file on a full disk raises
    SIGBUS, which kills the process without a message and leaves the file.
    """
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is None:  # macOS, Windows: no way to reserve; the map writes as it goes
        return
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        try:
            allocate(fd, 0, size)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                return  # a file system that cannot reserve
            raise
    finally:
        os.close(fd)
