"""Sample images to try colorization on: a photo, CryptoPunks and a 16-bit stack.

Each function returns napari layer data tuples ``(data, kwargs, "image")``: the
grayscale image to colorize first, then (where there is one) its colour truth,
hidden, to compare with. They are listed in the plugin manifest under
*File > Open Sample > napari-colorize* and used by ``napari-colorize demo``.
Nothing here imports Qt, napari or torch.
"""

from __future__ import annotations

import numpy as np

from .color import lab_to_rgb, rgb_to_lab

__all__ = ["gray16_stack", "gray_photo", "punks_stack", "rgb_to_gray"]

#: How many CryptoPunks of the test split the sample holds.
N_PUNKS = 64


def rgb_to_gray(rgb) -> np.ndarray:
    """The neutral gray of each pixel that has the pixel's CIE lightness.

    This is exactly the L a colorizer sees, so colorizing the gray and
    keeping its L reproduces the truth's lightness.

    Parameters
    ----------
    rgb : array-like
        ``(..., 3)`` uint8 (or float in [0, 1]).

    Returns
    -------
    numpy.ndarray
        uint8 with shape ``rgb.shape[:-1]``.
    """
    lab = rgb_to_lab(np.asarray(rgb)[..., :3])
    lab[..., 1:] = 0.0
    return np.round(lab_to_rgb(lab)[..., 0] * 255.0).astype(np.uint8)


def gray_photo() -> list[tuple]:
    """The scikit-image astronaut (512 x 512) in grayscale, with its colours as truth.

    Returns
    -------
    list of tuple
        The gray photo, then the colour truth (hidden).
    """
    from skimage import data

    rgb = data.astronaut()
    return [
        (rgb_to_gray(rgb), {"name": "astronaut"}, "image"),
        (rgb, {"name": "astronaut truth", "rgb": True, "visible": False}, "image"),
    ]


def punks_stack(n: int = N_PUNKS) -> list[tuple]:
    """The first ``n`` CryptoPunks of the test split as a grayscale stack, with their colours.

    The punks are 24 x 24 pixels; they keep that size (napari zooms in on
    them with nearest-neighbour display). The first call may download the
    dataset (see :func:`napari_colorize.data.punks.load_punks`).

    Returns
    -------
    list of tuple
        The gray stack ``(n, 24, 24)`` uint8, then the colour truth (hidden).
    """
    from .data.punks import load_punks

    rgb = np.ascontiguousarray(load_punks("test").rgb[:n])
    return [
        (rgb_to_gray(rgb), {"name": "punks"}, "image"),
        (rgb, {"name": "punks truth", "rgb": True, "visible": False}, "image"),
    ]


def make_gray16_stack(shape=(16, 128, 128), n_nuclei: int = 40, seed: int = 0) -> np.ndarray:
    """A synthetic 16-bit fluorescence stack: blurred nuclei over a dark, noisy background.

    Parameters
    ----------
    shape : tuple of int
        ``(Z, Y, X)``.
    n_nuclei : int
        How many nuclei.
    seed : int
        The random seed; the same seed gives the same stack.

    Returns
    -------
    numpy.ndarray
        uint16, values roughly 100 to 4000 (a 12-bit camera in a 16-bit file).
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = (np.arange(n, dtype=np.float32) for n in shape)
    stack = np.zeros(shape, dtype=np.float32)
    for _ in range(n_nuclei):
        cz, cy, cx = (rng.uniform(0, n) for n in shape)
        radius = rng.uniform(5.0, 11.0)
        brightness = rng.uniform(1200.0, 3500.0)
        # the stack is anisotropic, like a confocal one: nuclei span fewer planes than pixels
        dz = ((zz - cz) * 3.0)[:, None, None] ** 2
        dy = ((yy - cy) ** 2)[None, :, None]
        dx = ((xx - cx) ** 2)[None, None, :]
        stack += brightness * np.exp(-(dz + dy + dx) / (2.0 * radius**2))
    stack += 100.0 + rng.poisson(20.0, size=shape)
    return np.clip(stack, 0, 65535).astype(np.uint16)


def gray16_stack() -> list[tuple]:
    """A synthetic 16-bit grayscale stack (16 x 128 x 128) with a microscope's voxel size.

    Returns
    -------
    list of tuple
        One layer, scaled in micrometres like scikit-image's ``cells3d``.
    """
    return [
        (
            make_gray16_stack(),
            {"name": "nuclei 16-bit", "scale": (0.29, 0.26, 0.26), "colormap": "gray"},
            "image",
        )
    ]
