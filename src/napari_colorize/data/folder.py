"""A folder of colour images (png, jpg, bmp, tif; 8- or 16-bit) read lazily, one item at a time.

Only the headers are read when the dataset is built, to skip files that cannot
serve as colour targets (grayscale, smaller than the patch, unreadable); each
item then reads its own file. A multi-page RGB tif contributes one item per page.
Files are read by :mod:`napari_colorize.image_files`, as the CLI and
evaluation read them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..image_files import READ_SUFFIXES, image_header, list_images, read_rgb
from .arrays import SeededDataset
from .transforms import RandomCropFlip, rgb_to_net

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "list_images", "read_rgb"]

#: File types a folder is searched for (those :mod:`napari_colorize.image_files` reads).
IMAGE_EXTENSIONS = READ_SUFFIXES


class _Skip(Exception):
    """A file that cannot serve as a colour target; the message says why."""


@dataclass(frozen=True)
class _Item:
    path: Path
    page: int | None  # tif page of a multi-page stack; None: the whole file
    shape: tuple[int, int]


def _probe(path: Path) -> list[_Item]:
    """The items of one file (one per plane of a colour stack), from its header alone."""
    try:
        shape, dtype, planar = image_header(path)
    except ValueError as exc:  # corrupt or foreign files: skip with the reason
        raise _Skip(f"unreadable ({exc})") from None
    if planar:
        raise _Skip(f"planar TIFF (shape {shape}): colour planes read as a stack; save it as RGB")
    if len(shape) < 3 or shape[-1] not in (3, 4):
        raise _Skip(f"grayscale (shape {shape}): no colour target")
    if dtype.kind != "f" and dtype not in (np.uint8, np.uint16):
        raise _Skip(f"dtype {dtype} (use uint8, uint16 or float in [0, 1])")
    spatial, n_planes = shape[-3:-1], int(np.prod(shape[:-3]))
    if n_planes == 1:
        return [_Item(path, None, spatial)]
    return [_Item(path, page, spatial) for page in range(n_planes)]


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
