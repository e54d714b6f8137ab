"""Reading image files: one decoder and one rule for the CLI, evaluation and training.

Every path that reads an image file comes here, so a file reads the same way
wherever it is given (``napari-colorize colorize``, ``evaluate --data``,
``train --data``/``--image``, the Training widget):

- PNG, JPEG and BMP through imageio (Pillow); images Pillow holds in another
  colour space (CMYK, YCbCr, LAB, HSV) become RGB, palette images RGB(A).
- TIFF memory-mapped where the file allows, else through zarr (read where
  indexed) or whole, with its axes as stored: a multi-page TIFF is a stack
  ``(P, H, W[, C])``, and so is a planar one (samples before rows, as
  tifffile writes a ``(3, H, W)`` array by default).
- An OME-Zarr image folder: its full-resolution level, lazily
  (:mod:`napari_colorize.ome_zarr`).
- Gray stays ``(..., H, W)``; gray+alpha (a last axis of 2) is its gray
  channel; RGB and RGBA stay ``(..., H, W, 3)`` and ``(..., H, W, 4)``; the
  dtype is the file's (8 and 16 bits kept, float, bool).

:func:`read_image` gives that array (to colorize it); :func:`read_rgb` one
colour image ``(H, W, 3)`` from it (a training target or the truth an
evaluation scores against: alpha dropped, gray refused or repeated);
:func:`image_header` the shape and dtype :func:`read_image` gives, from the
file's header alone; :func:`list_images` the image files under a folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "READ_SUFFIXES",
    "TIFF_SUFFIXES",
    "ImageHeader",
    "image_header",
    "list_images",
    "read_image",
    "read_rgb",
]

#: File types read and written by ``napari-colorize colorize``.
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", *TIFF_SUFFIXES)
#: File types read (a folder of training or evaluation images may also hold BMPs).
READ_SUFFIXES = (*IMAGE_SUFFIXES, ".bmp")
#: Magic numbers of the types read, to tell a damaged image from something else.
_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"BM")
#: Pillow modes whose pixels are not RGB values: converted to RGB when read.
_PIL_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")
#: Pillow modes read as one gray channel (after the gray+alpha rule for "LA", "La").
_PIL_GRAY = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageHeader(NamedTuple):
    """What :func:`read_image` gives for a file, from its header.

    ``planar``: a TIFF storing colour samples before the rows (read as planes).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    planar: bool = False


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


def _read_pillow(path: Path) -> np.ndarray:
    import imageio.v3 as iio
    from PIL import Image

    with Image.open(path) as image:  # the header only
        mode = image.mode
    return iio.imread(path, mode="RGB") if mode in _PIL_TO_RGB else iio.imread(path)


def read_image(path: str | os.PathLike) -> Any:
    """Read an image or stack, lazily where the format allows.

    Parameters
    ----------
    path : path-like
        PNG, JPEG, BMP or TIFF (multi-page TIFFs are stacks), or an OME-Zarr
        image folder (level 0, see :mod:`napari_colorize.ome_zarr`).

    Returns
    -------
    array-like
        numpy array, ``np.memmap``, zarr or dask array, by the rule in this
        module's description: gray ``(..., H, W)`` (of gray+alpha images the
        gray channel), RGB or RGBA ``(..., H, W, 3 | 4)``, the file's dtype.

    Raises
    ------
    ValueError
        For an unknown suffix or a file that cannot be decoded; the message
        says what went wrong.
    FileNotFoundError
        For a missing file.
    """
    path = Path(path)
    from .ome_zarr import is_ome_zarr, read_ome_zarr

    if is_ome_zarr(path):
        return read_ome_zarr(path)[0]
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise ValueError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(READ_SUFFIXES)}"
        )
    try:
        return _drop_alpha(_open_tiff(path) if suffix in TIFF_SUFFIXES else _read_pillow(path))
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(_unreadable(path, exc)) from None


def read_rgb(
    path: str | os.PathLike, page: int | None = None, *, gray: bool = False
) -> np.ndarray:
    """Read one colour image as ``(H, W, 3)`` uint8, uint16 or float32 in [0, 1].

    The file is read by :func:`read_image` (16 bits kept, alpha dropped,
    ``page`` of a stack).

    Parameters
    ----------
    path : path-like
    page : int, optional
        The plane of a stack (a multi-page TIFF), counted over all its leading
        axes; None for a single image.
    gray : bool
        Repeat a gray image into three equal channels (the truth of an
        evaluation: it has no colour to predict); otherwise a gray image is an
        error, since it carries no colour to learn from.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        Starting with the path: a gray image (unless ``gray``), a stack without
        ``page``, an unsupported dtype, or a file that is empty, truncated or no image.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image file {os.fspath(path)!r}")
    try:
        array = read_image(path)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None
    try:
        array = np.asarray(array if page is None else array[_plane_index(array, page)])
    except MemoryError:
        raise
    except Exception as exc:  # a lazy array whose data is damaged further in
        raise ValueError(f"{os.fspath(path)}: {_unreadable(path, exc)}") from None
    while array.ndim > 3 and array.shape[0] == 1:  # a single plane stored as a stack of one
        array = array[0]
    if array.ndim == 2 and gray:
        array = np.repeat(array[..., None], 3, axis=-1)
    elif array.ndim == 2:
        raise ValueError(
            f"{path} is grayscale (shape {array.shape}): it carries no colour to learn from; "
            "remove it or convert it to RGB"
        )
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(
            f"{path} has shape {array.shape}; expected one gray, RGB or RGBA image "
            "(save a stack's planes as separate images)"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    from .data.transforms import check_rgb

    return check_rgb(array[..., :3], str(path))


def _plane_index(array: Any, page: int) -> tuple[int, ...]:
    """The index of plane ``page`` of a stack, counting over all its leading axes."""
    colour = array.ndim >= 3 and array.shape[-1] in (3, 4)
    leading = tuple(array.shape[: -3 if colour else -2])
    if not leading:
        raise IndexError(f"page {page} of a single image")
    return tuple(int(i) for i in np.unravel_index(page, leading))


def image_header(path: str | os.PathLike) -> ImageHeader:
    """The shape and dtype :func:`read_image` gives for a PNG, JPEG, BMP or TIFF, from its header.

    Raises
    ------
    ValueError
        For a file that is not an image of these types (the message says why).
    """
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype = tuple(series.shape), np.dtype(series.dtype)
                planar = series.axes.endswith("SYX")
        else:
            from PIL import Image

            planar = False
            with Image.open(path) as image:
                mode, (width, height) = image.mode, image.size
                has_alpha = "transparency" in image.info
            if mode in _PIL_GRAY:
                shape = (height, width)
            else:
                n = 4 if mode in ("RGBA", "RGBa", "RGBX", "PA") or has_alpha else 3
                shape = (height, width, n)
            dtype = np.dtype(
                {"1": bool, "F": np.float32, "I": np.int32}.get(
                    mode, np.uint16 if mode.startswith("I;16") else np.uint8
                )
            )
    except Exception as exc:
        raise ValueError(_unreadable(path, exc)) from None
    if len(shape) >= 3 and shape[-1] == 2:  # gray+alpha: the gray channel
        shape = shape[:-1]
    return ImageHeader(shape, dtype, planar)


def list_images(root, recursive: bool = True, extensions=READ_SUFFIXES) -> list[Path]:
    """Image files under ``root`` (or ``root`` itself if it is a file), sorted by path.

    Hidden files and folders (names starting with ``.``) are left out.

    Raises
    ------
    FileNotFoundError
        If ``root`` does not exist.
    """
    root = Path(root).expanduser()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    extensions = tuple(e.lower() for e in extensions)
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = [
        p
        for p in pattern
        if p.suffix.lower() in extensions
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


class _GrayOfGrayAlpha:
    """The gray channel of a lazy gray+alpha array, read only where indexed."""

    def __init__(self, array: Any):
        self._array = array
        self.shape = tuple(array.shape[:-1])
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            return np.asarray(self._array[key])[..., 0]
        return np.asarray(self._array[(*key, *[slice(None)] * (self.ndim - len(key)), 0)])

    def __array__(self, dtype=None, copy=None):
        gray = np.asarray(self._array[..., 0])
        return gray if dtype is None else gray.astype(dtype)


def _drop_alpha(array: Any) -> Any:
    """Gray+alpha (a last axis of 2: LA PNGs, 2-sample TIFFs) is a gray image."""
    from .images import MIN_SIZE

    shape = tuple(array.shape)
    if len(shape) < 3 or shape[-1] != 2 or min(shape[-3:-1]) < MIN_SIZE:
        return array
    if isinstance(array, np.ndarray):
        return array[..., 0]  # a view; a memory map stays one
    return _GrayOfGrayAlpha(array)


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why ``path`` could not be decoded, in words, with what to do."""
    what = _not_an_image(path)
    if what:
        return what
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "the image is truncated; remove it or copy it again"
    return f"cannot read it as {path.suffix[1:].upper()}: {text}"


def _not_an_image(path: Path) -> str | None:
    """Why a file that failed to decode is no image at all, or None if it may be a damaged one."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if not head:
        return "the file is empty (0 bytes)"
    if not head.startswith(_MAGIC):
        return "the file is not an image (its content is not PNG, JPEG, BMP or TIFF)"
    return None
