"""A folder of colour images (png, jpg, tif; 8- or 16-bit) read lazily, one item at a time.

Only the headers are read when the dataset is built, to skip files that cannot
serve as colour targets (grayscale, smaller than the patch, unreadable); each
item then reads its own file. A multi-page RGB tif contributes one item per page.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .arrays import SeededDataset
from .transforms import RandomCropFlip, check_rgb, rgb_to_net

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "list_images", "read_rgb"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")
# Pillow modes that carry colour; everything else ("L", "I;16", "1", "LA", "F", ...) is gray.
_PIL_COLOR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


class _Skip(Exception):
    """A file that cannot serve as a colour target; the message says why."""


@dataclass(frozen=True)
class _Item:
    path: Path
    page: int | None  # tif page of a multi-page stack; None: the whole file
    shape: tuple[int, int]


def list_images(root, recursive: bool = True, extensions=IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``root`` (or ``root`` itself if it is a file), sorted by path.

    Hidden files and folders (names starting with ``.``) are left out.
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


def _probe_tiff(path: Path) -> list[_Item]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, axes, dtype = tuple(series.shape), series.axes, series.dtype
        n_pages = len(series.pages)
    if axes.endswith("YXS") and shape[-1] in (3, 4):
        spatial, leading = shape[-3:-1], shape[:-3]
    elif axes.endswith("SYX") and shape[-3] in (3, 4) and len(shape) == 3:
        spatial, leading = shape[-2:], ()
    else:
        raise _Skip(f"grayscale (shape {shape}, axes {axes}): no colour target")
    if dtype.kind != "f" and dtype not in (np.uint8, np.uint16):
        raise _Skip(f"dtype {dtype} (use uint8, uint16 or float in [0, 1])")
    n_planes = int(np.prod(leading)) if leading else 1
    if n_planes == 1:
        return [_Item(path, None, spatial)]
    if n_pages != n_planes:
        raise _Skip(f"{n_planes} planes in {n_pages} pages: save one RGB image per page")
    return [_Item(path, page, spatial) for page in range(n_planes)]


def _probe_pil(path: Path) -> list[_Item]:
    from PIL import Image

    with Image.open(path) as image:
        mode, (width, height) = image.mode, image.size
    if mode not in _PIL_COLOR_MODES:
        raise _Skip(f"grayscale (mode {mode}): no colour target")
    return [_Item(path, None, (height, width))]


def _probe(path: Path) -> list[_Item]:
    try:
        return _probe_tiff(path) if path.suffix.lower() in _TIFF else _probe_pil(path)
    except _Skip:
        raise
    except Exception as exc:  # corrupt or foreign files: skip with the reason
        raise _Skip(f"unreadable ({type(exc).__name__}: {exc})") from None


def read_rgb(path, page: int | None = None) -> np.ndarray:
    """Read a colour image as ``(H, W, 3)`` uint8, uint16 or float32 in [0, 1].

    16-bit tifs keep their 16 bits; png/jpg are read with Pillow (8 bits per
    channel). An alpha channel is dropped.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For grayscale images (they carry no colour target), unsupported dtypes,
        and files that are empty, truncated or not images at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file {os.fspath(path)!r}")
    try:
        array = _read_array(path, page)
    except MemoryError:
        raise
    except Exception as exc:
        raise ValueError(f"{os.fspath(path)}: {_unreadable_reason(path, exc)}") from exc
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(
            f"{path} is grayscale (shape {array.shape}): it carries no colour to learn from; "
            "remove it or convert it to RGB"
        )
    if array.dtype.kind == "f":
        array = array.astype(np.float32, copy=False)
    return check_rgb(array[..., :3], str(path))


def _unreadable_reason(path: Path, exc: Exception) -> str:
    """Why ``path`` could not be read, in words, with what to do."""
    if path.stat().st_size == 0:
        return "the file is empty (0 bytes); copy the image again or give another file"
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "the image is truncated; remove it or copy it again"
    if type(exc).__name__ in ("UnidentifiedImageError", "TiffFileError"):
        return "not an image file (PNG, JPEG or TIFF); give a colour photo in one of these formats"
    return f"cannot be read as an image ({type(exc).__name__}: {text}); remove or replace it"


def _read_array(path: Path, page: int | None) -> np.ndarray:
    """The pixels of ``path`` (of tif page ``page``) as stored, alpha included."""
    if path.suffix.lower() in _TIFF:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            array = tif.pages[page].asarray() if page is not None else series.asarray()
        if page is None and axes.endswith("SYX") and array.ndim == 3 and array.shape[0] in (3, 4):
            array = np.moveaxis(array, 0, -1)
        array = array.reshape(array.shape[-3:]) if array.ndim > 3 else array
    else:
        from PIL import Image

        with Image.open(path) as image:
            if image.mode not in _PIL_COLOR_MODES:
                array = np.asarray(image)
            else:
                array = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return array


class ImageFolderDataset(SeededDataset):
    """The colour images of a folder as ``(l_net, ab_net)`` training pairs, read lazily.

    Parameters
    ----------
    root : path-like
        A folder (or a single image file).
    patch_size : int or (int, int), optional
        Size of the random crops; ``None`` yields whole images (then batches need
        images of one size). Images smaller than the patch are skipped.
    recursive : bool
        Also look in subfolders.
    flips : bool
        Flip left-right with probability 1/2.
    seed : int
        Items depend only on ``(seed, epoch, index)``.
    samples_per_epoch : int, optional
        Number of items; item ``i`` comes from image ``i % n_images``. Default: one per image.
    extensions : tuple of str
        File name endings to read.

    Files that carry no colour (grayscale), are too small or unreadable are left
    out with one warning; a folder without any usable image raises ``ValueError``.
    """

    def __init__(
        self,
        root,
        patch_size=None,
        recursive: bool = True,
        flips: bool = True,
        seed: int = 0,
        *,
        samples_per_epoch: int | None = None,
        extensions=IMAGE_EXTENSIONS,
    ):
        super().__init__(patch_size, flips, seed)
        self.root = Path(root).expanduser()
        files = list_images(self.root, recursive, extensions)
        self.items: list[_Item] = []
        skipped: list[tuple[Path, str]] = []
        for path in files:
            try:
                items = _probe(path)
            except _Skip as reason:
                skipped.append((path, str(reason)))
                continue
            if self.patch_size is not None:
                h, w = items[0].shape
                if h < self.patch_size[0] or w < self.patch_size[1]:
                    skipped.append((path, f"{h}x{w} is smaller than patch_size {self.patch_size}"))
                    continue
            self.items.extend(items)
        self.skipped = skipped
        self._unreadable: set[int] = set()
        if not self.items:
            details = "; ".join(f"{p.name}: {why}" for p, why in skipped[:5])
            raise ValueError(
                f"no usable colour images ({', '.join(extensions)}) in {self.root}"
                + (f" (skipped {len(skipped)}: {details})" if skipped else "")
                + ("" if recursive else "; pass recursive=True to look into subfolders")
                + "; add colour images there or give another folder"
            )
        if skipped:
            details = "; ".join(f"{os.fspath(p)}: {why}" for p, why in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            warnings.warn(
                f"skipped {len(skipped)} of {len(files)} files in {self.root}: {details}{more}",
                stacklevel=2,
            )
        n = samples_per_epoch if samples_per_epoch is not None else len(self.items)
        if int(n) < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.samples_per_epoch = int(n)

    @property
    def files(self) -> list[Path]:
        """The files the items come from (a multi-page tif once per page)."""
        return [item.path for item in self.items]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _read(self, index: int) -> np.ndarray:
        """The RGB of item ``index``; an unreadable file is skipped (once, with a warning).

        Headers are checked when the dataset is built; a file damaged further in
        (a truncated PNG or JPEG) shows only when read. Its items then read the
        next readable image instead, the same one on every epoch and on resume.
        """
        n = len(self.items)
        for k in range(n):
            position = (index + k) % n
            if position in self._unreadable:
                continue
            item = self.items[position]
            try:
                return read_rgb(item.path, item.page)
            except (ValueError, OSError) as exc:
                self._unreadable.add(position)
                self.skipped.append((item.path, str(exc)))
                warnings.warn(
                    f"skipping {exc}; training goes on with the other images", stacklevel=3
                )
        raise ValueError(
            f"none of the {n} images in {self.root} can be read (see the warnings above); "
            "replace the damaged files"
        )

    def __getitem__(self, index):
        index = self._check_index(index)
        rgb = self._read(index % len(self.items))
        box, flip = self.transform.params(self.rng(index), rgb.shape[:2])
        rgb = RandomCropFlip(channel_last=True).apply(rgb, box, flip)
        l_net, ab_net = rgb_to_net(np.ascontiguousarray(rgb))
        return torch.from_numpy(l_net), torch.from_numpy(ab_net)
