"""Colorization quality metrics: CIEDE2000, PSNR, SSIM, colorfulness and ab-error AuC.

All functions take batches of channel-last images, ``(N, H, W, 3)`` (a single
``(H, W, 3)`` image is read as a batch of one), and accumulate in float64.

Two ways of averaging are used, and each metric states which:

* per pixel (pooled over every pixel of every image): ``ciede2000``,
  ``ciede2000_fg`` and ``auc``. Large images weigh more than small ones.
* per image (the metric of each image, then the mean over images), as Zhang et
  al. (2016) report PSNR: ``psnr``, ``ssim``, ``colorfulness`` and
  ``colorfulness_true``.

For evaluation over many batches, :func:`score_images` returns an
:class:`ImageScores` of per-image sums that concatenate across batches and
split into groups (:func:`breakdown`); :func:`report` is the one-batch shortcut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from .color import rgb_to_lab

__all__ = [
    "AUC_THRESHOLDS",
    "PSNR_MAX",
    "REPORT_KEYS",
    "ImageScores",
    "ab_auc",
    "breakdown",
    "ciede2000",
    "colorfulness",
    "psnr",
    "report",
    "score_images",
    "ssim",
]

#: The keys of :func:`report`, in display order.
REPORT_KEYS = (
    "ciede2000",
    "ciede2000_fg",
    "psnr",
    "ssim",
    "colorfulness",
    "colorfulness_true",
    "auc",
)
#: ab-error thresholds of the AuC (Zhang et al. 2016): 0, 1, ..., 150.
AUC_THRESHOLDS = np.arange(0, 151)
#: PSNR of one image is capped here (dB): identical images would give infinity,
#: which neither averages nor fits in JSON.
PSNR_MAX = 100.0

# SSIM as in skimage.metrics.structural_similarity with its defaults
# (uniform 7x7 window, sample covariance, K1 = 0.01, K2 = 0.03).
_SSIM_WIN = 7
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


# ------------------------------------------------------------------ inputs


def _as_batch(x: np.ndarray, what: str, channels: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(
            f"{what} must have shape (N, H, W, {channels}) or (H, W, {channels}), got {x.shape}"
        )
    return x


def _as_rgb01(rgb: np.ndarray, what: str) -> np.ndarray:
    """``(N, H, W, 3)`` float64 in [0, 1] from uint8, uint16 or float RGB."""
    rgb = _as_batch(rgb, what, 3)
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float64) / 65535.0
    if rgb.dtype.kind == "f":
        return rgb.astype(np.float64, copy=False)
    raise ValueError(f"{what} must be uint8, uint16 or float RGB in [0, 1], got dtype {rgb.dtype}")


def _check_same_shape(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {a.shape} and {b.shape}")


def _rgb01_pair(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and truth as :func:`_as_rgb01` makes them, checked to have one shape."""
    p, t = _as_rgb01(rgb_pred, "rgb_pred"), _as_rgb01(rgb_true, "rgb_true")
    _check_same_shape(p, t, "rgb_pred and rgb_true")
    return p, t


def _as_mask(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """Boolean mask of the pixel shape ``shape`` (``(N, H, W)``), or None."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == len(shape) - 1:
        mask = mask[None]
    if mask.shape != shape:
        raise ValueError(f"mask must have the pixel shape {shape}, got {mask.shape}")
    return mask.astype(bool, copy=False)


# ---------------------------------------------------------------- CIEDE2000


def _deltae_ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 (kL = kC = kH = 1), float64, shape ``lab1.shape[:-1]``."""
    from skimage.color import deltaE_ciede2000

    # scikit-image follows Sharma, Wu & Dalal (2005) and passes their test data;
    # tests/test_metrics.py checks that here too
    return deltaE_ciede2000(
        np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64), channel_axis=-1
    )


def ciede2000(lab_pred: np.ndarray, lab_true: np.ndarray, mask=None) -> float:
    """Mean CIEDE2000 colour difference over pixels.

    Parameters
    ----------
    lab_pred, lab_true : numpy.ndarray
        CIE Lab, shape ``(..., 3)`` (any leading shape, e.g. ``(N, H, W, 3)``).
    mask : numpy.ndarray of bool, optional
        Shape ``lab_true.shape[:-1]``; only pixels where it is true count.

    Returns
    -------
    float
        Mean ΔE00 over all (or the masked) pixels; NaN when the mask is empty.
    """
    lab_pred, lab_true = np.asarray(lab_pred), np.asarray(lab_true)
    _check_same_shape(lab_pred, lab_true, "lab_pred and lab_true")
    if lab_true.ndim < 1 or lab_true.shape[-1] != 3:
        raise ValueError(f"expected Lab on the last axis (shape (..., 3)), got {lab_true.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != lab_true.shape[:-1]:
            raise ValueError(
                f"mask must have the pixel shape {lab_true.shape[:-1]}, got {mask.shape}"
            )
        lab_pred, lab_true = lab_pred[mask], lab_true[mask]
    if lab_true.size == 0:
        return math.nan
    return float(_deltae_ciede2000(lab_pred, lab_true).mean(dtype=np.float64))


# --------------------------------------------------------------------- PSNR


def _psnr_per_image(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> np.ndarray:
    mse = np.mean((rgb_pred - rgb_true) ** 2, axis=(1, 2, 3), dtype=np.float64)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(1.0 / mse)
    return np.minimum(value, PSNR_MAX)


def psnr(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> float:
    """Peak signal-to-noise ratio on RGB in [0, 1] (data range 1), mean over images.

    Each image's PSNR is computed from its own mean squared error and capped at
    :data:`PSNR_MAX` dB (identical images), then the per-image values are
    averaged, as Zhang et al. (2016) report it.

    Parameters
    ----------
    rgb_pred, rgb_true : numpy.ndarray
        ``(N, H, W, 3)`` or ``(H, W, 3)``; uint8, uint16 or float in [0, 1].

    Returns
    -------
    float
        Mean PSNR in dB.
    """
    p, t = _rgb01_pair(rgb_pred, rgb_true)
    return float(_psnr_per_image(p, t).mean())


# --------------------------------------------------------------------- SSIM


def _ssim_win_size(height: int, width: int) -> int:
    win = min(_SSIM_WIN, height, width)
    win -= 1 - win % 2  # largest odd size that fits
    if win < 3:
        raise ValueError(
            f"SSIM needs images of at least 3x3 pixels, got {height}x{width}; "
            "leave such tiny images out of the evaluation"
        )
    return win


def _ssim_per_image(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> np.ndarray:
    """skimage's ``structural_similarity(channel_axis=-1, data_range=1)``, batched."""
    from scipy.ndimage import uniform_filter

    _, h, w, _ = rgb_true.shape
    win = _ssim_win_size(h, w)
    size = (1, win, win, 1)

    def box(x):
        return uniform_filter(x, size=size, mode="reflect")

    x, y = rgb_pred, rgb_true
    ux, uy = box(x), box(y)
    cov_norm = win * win / (win * win - 1.0)  # sample covariance, as skimage
    vx = cov_norm * (box(x * x) - ux * ux)
    vy = cov_norm * (box(y * y) - uy * uy)
    vxy = cov_norm * (box(x * y) - ux * uy)
    c1, c2 = _SSIM_K1**2, _SSIM_K2**2  # data range 1
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    # mean over the valid window positions; skimage averages the channels, equal in size
    return s[:, pad : h - pad, pad : w - pad, :].mean(axis=(1, 2, 3), dtype=np.float64)


def ssim(rgb_pred: np.ndarray, rgb_true: np.ndarray) -> float:
    """Mean structural similarity over images (RGB, data range 1).

    Matches ``skimage.metrics.structural_similarity(p, t, channel_axis=-1,
    data_range=1)`` on each image (7x7 uniform window), vectorised over the
    batch. Images smaller than 7 pixels on a side use the largest odd window
    that fits (at least 3).

    Parameters
    ----------
    rgb_pred, rgb_true : numpy.ndarray
        ``(N, H, W, 3)`` or ``(H, W, 3)``, at least 3x3 pixels; uint8, uint16 or
        float in [0, 1].

    Returns
    -------
    float
        Mean SSIM (1 for identical images).
    """
    p, t = _rgb01_pair(rgb_pred, rgb_true)
    return float(_ssim_per_image(p, t).mean())


# ------------------------------------------------------------- colorfulness


def _colorfulness_per_image(rgb01: np.ndarray) -> np.ndarray:
    rgb = rgb01 * 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    axes = (1, 2)
    std = np.sqrt(rg.var(axis=axes) + yb.var(axis=axes))
    mean = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    return std + 0.3 * mean


def colorfulness(rgb: np.ndarray) -> float:
    """Colorfulness of Hasler & Süsstrunk (2003), mean over images.

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` on the 0..255 scale, the
    colorfulness of one image is ``sqrt(σrg² + σyb²) + 0.3 sqrt(μrg² + μyb²)``
    over its pixels. A gray image scores 0.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(N, H, W, 3)`` or ``(H, W, 3)``; uint8, uint16 or float in [0, 1].

    Returns
    -------
    float
        Mean colorfulness over the images.
    """
    return float(_colorfulness_per_image(_as_rgb01(rgb, "rgb")).mean())


# ---------------------------------------------------------------------- AuC


def _check_thresholds(thresholds) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError(
            "thresholds must be at least two increasing values, e.g. np.arange(0, 151)"
        )
    return t


def _ab_hits(ab_error: np.ndarray, thresholds: np.ndarray, mask=None) -> np.ndarray:
    """Per image, the number of pixels with ab error <= each threshold: ``(N, T)`` int64."""
    n = ab_error.shape[0]
    n_t = thresholds.size
    # index of the first threshold that each error does not exceed (n_t: none)
    idx = np.searchsorted(thresholds, ab_error.reshape(n, -1), side="left")
    flat = idx + (n_t + 1) * np.arange(n)[:, None]
    weights = None if mask is None else mask.reshape(n, -1).astype(np.float64)
    counts = np.bincount(
        flat.ravel(), weights=None if weights is None else weights.ravel(), minlength=n * (n_t + 1)
    )
    counts = counts.reshape(n, n_t + 1)[:, :n_t]
    return np.cumsum(counts, axis=1).astype(np.int64)


def _auc_from_cdf(cdf: np.ndarray, thresholds: np.ndarray) -> float:
    # trapezoid rule normalised by the threshold range: 1 when every error is 0
    area = np.sum((cdf[1:] + cdf[:-1]) * np.diff(thresholds)) / 2.0
    return float(area / (thresholds[-1] - thresholds[0]))


def ab_auc(ab_pred, ab_true, thresholds=AUC_THRESHOLDS, mask=None) -> float:
    """Area under the CDF of the per-pixel ab error (Zhang et al. 2016), in [0, 1].

    The fraction of pixels whose Euclidean error in the ab plane is at most
    ``t`` is taken for each threshold ``t``; the area under that curve
    (trapezoid rule) divided by the threshold range is the AuC. Pixels are
    pooled over all images.

    Parameters
    ----------
    ab_pred, ab_true : numpy.ndarray
        ab, shape ``(..., 2)``.
    thresholds : array-like
        Increasing thresholds in ab units; by default 0, 1, ..., 150.
    mask : numpy.ndarray of bool, optional
        Shape ``ab_true.shape[:-1]``; only pixels where it is true count.

    Returns
    -------
    float
        AuC in [0, 1] (1 when every error is 0); NaN when the mask is empty.
    """
    ab_pred, ab_true = np.asarray(ab_pred), np.asarray(ab_true)
    _check_same_shape(ab_pred, ab_true, "ab_pred and ab_true")
    if ab_true.ndim < 1 or ab_true.shape[-1] != 2:
        raise ValueError(f"expected ab on the last axis (shape (..., 2)), got {ab_true.shape}")
    t = _check_thresholds(thresholds)
    err = np.sqrt(np.sum((ab_pred.astype(np.float64) - ab_true) ** 2, axis=-1))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != err.shape:
            raise ValueError(f"mask must have the pixel shape {err.shape}, got {mask.shape}")
        err = err[mask]
    if err.size == 0:
        return math.nan
    hits = _ab_hits(err.reshape(1, -1), t)[0]
    return _auc_from_cdf(hits / err.size, t)


# ------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class ImageScores:
    """Per-image sums and scores of a set of predictions, from :func:`score_images`.

    Every field holds one value (or row) per image, so scores of several batches
    concatenate (:meth:`concat`) and subsets average to their own report
    (:meth:`subset`, :meth:`summary`) exactly as if scored alone.
    """

    #: sum of per-pixel ΔE00 and number of pixels
    de_sum: np.ndarray
    n_pixels: np.ndarray
    #: the same over foreground pixels (every pixel when no alpha was given)
    de_fg_sum: np.ndarray
    n_fg: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray
    colorfulness: np.ndarray
    colorfulness_true: np.ndarray
    #: ``(N, T)`` pixels with ab error <= each threshold
    ab_hits: np.ndarray
    thresholds: np.ndarray

    def __len__(self) -> int:
        return int(self.n_pixels.shape[0])

    @classmethod
    def concat(cls, parts: Sequence[ImageScores]) -> ImageScores:
        """Join the scores of several batches (with the same thresholds)."""
        parts = list(parts)
        if not parts:
            raise ValueError("no scores to join: score at least one image first")
        t = parts[0].thresholds
        if any(not np.array_equal(p.thresholds, t) for p in parts):
            raise ValueError("scores with different AuC thresholds cannot be joined")
        values = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in fields(cls)
            if f.name != "thresholds"
        }
        return cls(**values, thresholds=t)

    def subset(self, index) -> ImageScores:
        """The scores of the images selected by ``index`` (bool mask or indices)."""
        values = {
            f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "thresholds"
        }
        return type(self)(**values, thresholds=self.thresholds)

    def summary(self) -> dict[str, float]:
        """The seven metrics of :func:`report` over these images (NaN for none)."""
        n_pix = self.n_pixels.sum()
        n_fg = self.n_fg.sum()

        def ratio(num, den):
            return float(num / den) if den > 0 else math.nan

        def mean(x):
            return float(x.mean(dtype=np.float64)) if x.size else math.nan

        auc = (
            _auc_from_cdf(self.ab_hits.sum(axis=0) / n_pix, self.thresholds)
            if n_pix > 0
            else math.nan
        )
        return {
            "ciede2000": ratio(self.de_sum.sum(), n_pix),
            "ciede2000_fg": ratio(self.de_fg_sum.sum(), n_fg),
            "psnr": mean(self.psnr),
            "ssim": mean(self.ssim),
            "colorfulness": mean(self.colorfulness),
            "colorfulness_true": mean(self.colorfulness_true),
            "auc": auc,
        }


def score_images(rgb_pred, rgb_true, alpha=None, thresholds=AUC_THRESHOLDS) -> ImageScores:
    """Score a batch of predictions image by image (see :class:`ImageScores`).

    Parameters
    ----------
    rgb_pred, rgb_true : numpy.ndarray
        ``(N, H, W, 3)`` or ``(H, W, 3)``; uint8, uint16 or float in [0, 1].
    alpha : numpy.ndarray, optional
        ``(N, H, W)`` opacity of the truth (any dtype); pixels with alpha > 0
        are the foreground. Without it every pixel is foreground.
    thresholds : array-like
        ab-error thresholds of the AuC.

    Returns
    -------
    ImageScores
    """
    p, t = _rgb01_pair(rgb_pred, rgb_true)
    thresholds = _check_thresholds(thresholds)
    n, h, w, _ = t.shape
    fg = _as_mask(None if alpha is None else np.asarray(alpha) > 0, (n, h, w))

    lab_p, lab_t = rgb_to_lab(p), rgb_to_lab(t)
    de = _deltae_ciede2000(lab_p, lab_t)
    ab_err = np.sqrt(np.sum((lab_p[..., 1:] - lab_t[..., 1:]) ** 2, axis=-1))
    n_pixels = np.full(n, h * w, dtype=np.int64)
    if fg is None:
        de_fg_sum, n_fg = de.sum(axis=(1, 2)), n_pixels
    else:
        de_fg_sum, n_fg = (de * fg).sum(axis=(1, 2)), fg.sum(axis=(1, 2), dtype=np.int64)
    return ImageScores(
        de_sum=de.sum(axis=(1, 2)),
        n_pixels=n_pixels,
        de_fg_sum=de_fg_sum,
        n_fg=n_fg,
        psnr=_psnr_per_image(p, t),
        ssim=_ssim_per_image(p, t),
        colorfulness=_colorfulness_per_image(p),
        colorfulness_true=_colorfulness_per_image(t),
        ab_hits=_ab_hits(ab_err, thresholds),
        thresholds=thresholds,
    )


def report(rgb_pred, rgb_true, alpha=None) -> dict[str, float]:
    """All metrics of a set of predictions against the truth.

    Parameters
    ----------
    rgb_pred, rgb_true : numpy.ndarray
        ``(N, H, W, 3)`` or ``(H, W, 3)``; uint8, uint16 or float in [0, 1].
    alpha : numpy.ndarray, optional
        ``(N, H, W)`` opacity of the truth; pixels with alpha > 0 are the
        foreground of ``ciede2000_fg``.

    Returns
    -------
    dict
        Exactly the keys of :data:`REPORT_KEYS`:

        - ``ciede2000``: mean ΔE00 over all pixels;
        - ``ciede2000_fg``: mean ΔE00 over foreground pixels (alpha > 0); equal
          to ``ciede2000`` when no alpha is given (every pixel is foreground),
          NaN when the foreground is empty;
        - ``psnr``: per-image PSNR (dB, capped at :data:`PSNR_MAX`), mean over images;
        - ``ssim``: per-image SSIM, mean over images;
        - ``colorfulness`` / ``colorfulness_true``: Hasler & Süsstrunk
          colorfulness of the predictions / the truth, mean over images;
        - ``auc``: AuC of the per-pixel ab-error CDF over thresholds 0..150,
          pooled over all pixels, in [0, 1].
    """
    return score_images(rgb_pred, rgb_true, alpha).summary()


def breakdown(scores: ImageScores, groups, names: Sequence[str] | None = None) -> dict:
    """The report of each group of images, e.g. ``ciede2000_fg`` by punk type.

    Parameters
    ----------
    scores : ImageScores
        Scores of N images.
    groups : array-like
        Either ``(N,)`` group labels (one group per image; any hashable values)
        or an ``(N, G)`` boolean membership matrix (an image may be in several
        groups, or none).
    names : sequence of str, optional
        Names of the G columns of a membership matrix (default: their indices).

    Returns
    -------
    dict
        ``{group name: {**report keys, "n_images": int}}``; groups without
        images are left out. Labels are sorted; matrix columns keep their order.
    """
    groups = np.asarray(groups)
    if groups.shape[:1] != (len(scores),) or groups.ndim not in (1, 2):
        raise ValueError(
            f"groups must be (N,) labels or an (N, G) membership matrix with N = {len(scores)}, "
            f"got shape {groups.shape}"
        )
    if groups.ndim == 1:
        selections: Mapping = {str(g): groups == g for g in np.unique(groups)}
    else:
        if names is None:
            names = [str(i) for i in range(groups.shape[1])]
        if len(names) != groups.shape[1]:
            raise ValueError(f"got {len(names)} names for {groups.shape[1]} group columns")
        selections = {str(name): groups[:, i].astype(bool) for i, name in enumerate(names)}
    out = {}
    for name, sel in selections.items():
        n = int(np.count_nonzero(sel))
        if n:
            out[name] = {**scores.subset(sel).summary(), "n_images": n}
    return out
