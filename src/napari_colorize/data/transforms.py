"""Random crops and horizontal flips that are reproducible per item.

Every item draws its randomness from its own generator,
``numpy.random.default_rng((seed, epoch, index))``: the sample an index yields
depends only on the seed, the epoch and the index, never on the order in which
items are read, the number of DataLoader workers, or where a resumed run starts.

numpy only; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RandomCropFlip", "as_patch_size", "check_rgb", "crop_box", "item_rng", "rgb_to_net"]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item ``index`` in ``epoch`` under ``seed``."""
    return np.random.default_rng((int(seed), int(epoch), int(index)))


def as_patch_size(patch_size) -> tuple[int, int] | None:
    """``None``, an int or an ``(h, w)`` pair as ``None`` or ``(h, w)``.

    Raises
    ------
    ValueError
        For sizes that are not positive integers.
    """
    if patch_size is None:
        return None
    size = (patch_size, patch_size) if np.ndim(patch_size) == 0 else tuple(patch_size)
    if len(size) != 2 or not all(float(s).is_integer() and int(s) > 0 for s in size):
        raise ValueError(
            f"patch_size must be a positive int or an (h, w) pair, got {patch_size!r}"
        )
    return int(size[0]), int(size[1])


def crop_box(
    rng: np.random.Generator, shape: tuple[int, int], patch_size: tuple[int, int] | None
) -> tuple[int, int, int, int]:
    """A random ``(y, x, h, w)`` window of ``patch_size`` inside an image of ``shape``.

    Always draws two integers, so that the stream of a generator does not depend
    on whether a crop was asked for. ``patch_size=None`` is the whole image.
    """
    height, width = int(shape[0]), int(shape[1])
    h, w = (height, width) if patch_size is None else patch_size
    if h > height or w > width:
        raise ValueError(
            f"patch_size {(h, w)} is larger than the image ({height}, {width}); "
            "use a smaller patch_size or larger images"
        )
    y = int(rng.integers(0, height - h + 1))
    x = int(rng.integers(0, width - w + 1))
    return y, x, h, w


@dataclass(frozen=True)
class RandomCropFlip:
    """Crop a random window and flip it left-right with probability 1/2.

    Parameters
    ----------
    patch_size : tuple of int or None
        ``(h, w)`` of the window; ``None`` keeps the whole image.
    flips : bool
        Whether to flip at random.
    channel_last : bool
        Whether arrays are ``(H, W, C)`` (or ``(H, W)``) rather than ``(C, H, W)``.
    """

    patch_size: tuple[int, int] | None = None
    flips: bool = True
    channel_last: bool = False

    def params(self, rng: np.random.Generator, shape: tuple[int, int]):
        """Draw ``((y, x, h, w), flip)`` for an image of spatial ``shape``."""
        box = crop_box(rng, shape, self.patch_size)
        flip = bool(rng.random() < 0.5)  # drawn even without flips: same stream either way
        return box, flip and self.flips

    def apply(self, array: np.ndarray, box, flip: bool) -> np.ndarray:
        """Apply a crop window and flip (from :meth:`params`) to one array."""
        y, x, h, w = box
        if self.channel_last:
            out = array[y : y + h, x : x + w]
            return out[:, ::-1] if flip else out
        out = array[..., y : y + h, x : x + w]
        return out[..., ::-1] if flip else out

    def __call__(self, rng: np.random.Generator, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Apply the same random crop and flip to arrays of one spatial shape."""
        if not arrays:
            return ()
        spatial = arrays[0].shape[:2] if self.channel_last else arrays[0].shape[-2:]
        box, flip = self.params(rng, spatial)
        return tuple(self.apply(a, box, flip) for a in arrays)


def check_rgb(rgb: np.ndarray, what: str = "image") -> np.ndarray:
    """Check that ``rgb`` is ``(..., 3)`` uint8, uint16 or float in [0, 1]; return it as an array.

    Raises
    ------
    ValueError
        Naming the problem (no colour axis, dtype, NaN, range) and the fix.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim < 3 or rgb.shape[-1] != 3:
        hint = " (drop the alpha channel with rgb[..., :3])" if rgb.shape[-1:] == (4,) else ""
        raise ValueError(
            f"{what} must be RGB with shape (H, W, 3) or (N, H, W, 3), got shape {rgb.shape}"
            f"{hint}; grayscale images carry no colour to learn from"
        )
    if rgb.dtype.kind == "f":
        if not np.all(np.isfinite(rgb)):
            raise ValueError(f"{what} contains NaN or inf; replace them before training")
        lo, hi = float(rgb.min()), float(rgb.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"float {what} must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]; "
                "divide by its maximum or pass uint8/uint16"
            )
        return np.clip(rgb, 0.0, 1.0)
    if rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{what} must be uint8, uint16 or float in [0, 1], got dtype {rgb.dtype}")
    return rgb


def rgb_to_net(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network input and target of RGB images: ``l_to_net(L)`` and ``ab_to_net(ab)``.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(..., H, W, 3)``, uint8, uint16 or float in [0, 1].

    Returns
    -------
    l_net, ab_net : numpy.ndarray
        float32 ``(..., 1, H, W)`` in [-1, 1] and ``(..., 2, H, W)`` in about [-1, 1].
    """
    from ..color import ab_to_net, l_to_net, rgb_to_lab

    lab = rgb_to_lab(rgb).astype(np.float32, copy=False)
    lab = np.moveaxis(lab, -1, -3)
    l_net = l_to_net(lab[..., 0:1, :, :]).astype(np.float32, copy=False)
    ab_net = ab_to_net(lab[..., 1:3, :, :]).astype(np.float32, copy=False)
    return np.ascontiguousarray(l_net), np.ascontiguousarray(ab_net)
