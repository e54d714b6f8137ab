"""Edge-aware filters guided by lightness: the guided filter and the domain transform.

Both are linear in the filtered image and cost O(pixels) whatever their
spatial extent, so they run on megapixel planes in a fraction of a second on a
CPU:

- :func:`guided_filter` (He, Sun and Tang 2013): a local linear model of the
  output in the guide, fitted in boxes; smooths colour while keeping it aligned
  with lightness edges.
- :func:`domain_transform` (Gastal and Oliveira 2011, recursive filter): an
  exponential smoothing along rows and columns whose decay grows with the
  lightness change between neighbours, i.e. a filter over geodesic distance.
  Applied to ``(ab * mask, mask)`` it spreads sparse colour hints along
  lightness (normalized convolution).
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_mean", "domain_transform", "guided_filter"]


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over ``(2r + 1)²`` boxes along the first two axes of ``x`` (H, W, ...), reflected.

    Separable running sums (``scipy.ndimage.uniform_filter1d``): the cost does
    not depend on the radius.
    """
    from scipy.ndimage import uniform_filter1d

    size = 2 * int(radius) + 1
    if radius < 1:
        return x
    out = uniform_filter1d(x, size, axis=0, mode="reflect")
    return uniform_filter1d(out, size, axis=1, mode="reflect", output=out)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3):
    """Smooth ``src`` (H, W, C) edge-aware with the gray ``guide`` (H, W) in [0, 1].

    Parameters
    ----------
    guide : numpy.ndarray
        Float (H, W), roughly in [0, 1] (``L / 100``).
    src : numpy.ndarray
        Float (H, W, C), the image to smooth (any units).
    radius : int
        Box radius in pixels.
    eps : float
        Regularisation in squared guide units: edges whose contrast is well
        above ``sqrt(eps)`` are kept.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, C).
    """
    full = np.asarray(guide, dtype=np.float32)[..., None]
    p = np.asarray(src, dtype=np.float32)
    # the fast guided filter (He and Sun 2015): the linear coefficients vary slowly,
    # so they are fitted on a grid ``factor`` times coarser and interpolated back
    factor = max(1, min(radius // 2, min(full.shape[:2]) // 16))
    g = _resize(full, factor) if factor > 1 else full
    if factor > 1:
        p = _resize(p, factor)
    r = max(1, radius // factor)
    mean_g = box_mean(g, r)
    mean_p = box_mean(p, r)
    cov = box_mean(g * p, r) - mean_g * mean_p
    var = box_mean(g * g, r) - mean_g * mean_g
    a = cov / (var + np.float32(eps))
    b = mean_p - a * mean_g
    mean_a, mean_b = box_mean(a, r), box_mean(b, r)
    if factor > 1:
        mean_a = _resize(mean_a, full.shape[:2])
        mean_b = _resize(mean_b, full.shape[:2])
    return mean_a * full + mean_b


def _resize(x: np.ndarray, factor_or_shape) -> np.ndarray:
    """(H, W, C) shrunk by an integer factor (area) or enlarged to a shape (bilinear)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        if isinstance(factor_or_shape, int):
            h, w = x.shape[0] // factor_or_shape, x.shape[1] // factor_or_shape
            t = F.interpolate(t, size=(max(1, h), max(1, w)), mode="area")
        else:
            t = F.interpolate(t, size=tuple(factor_or_shape), mode="bilinear", align_corners=False)
        return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())


def _recursive_pass(data: np.ndarray, weight: np.ndarray) -> None:
    """Forward then backward first-order recursion along the first axis, in place.

    ``data`` is (n, C, m) and ``weight`` (n, m): ``weight[x]`` couples ``x - 1``
    and ``x``. Each step works on one contiguous slice.
    """
    n = data.shape[0]
    step = np.empty_like(data[0])
    subtract, multiply, add = np.subtract, np.multiply, np.add
    for x in range(1, n):
        subtract(data[x - 1], data[x], out=step)
        multiply(step, weight[x], out=step)
        add(data[x], step, out=data[x])
    for x in range(n - 2, -1, -1):
        subtract(data[x + 1], data[x], out=step)
        multiply(step, weight[x + 1], out=step)
        add(data[x], step, out=data[x])


def domain_transform(
    data: np.ndarray,
    guide: np.ndarray,
    sigma_spatial: float,
    sigma_range: float,
    iterations: int = 3,
) -> np.ndarray:
    """Edge-aware recursive filter of ``data`` (C, H, W) guided by ``guide`` (H, W).

    Parameters
    ----------
    data : numpy.ndarray
        float32 (C, H, W).
    guide : numpy.ndarray
        (H, W) in [0, 1] (``L / 100``).
    sigma_spatial : float
        Spatial extent in pixels (geodesic).
    sigma_range : float
        Guide contrast, in guide units, that counts as far as ``sigma_spatial`` pixels.
    iterations : int
        Horizontal + vertical passes; 3 suppresses the stripes of one pass.

    Returns
    -------
    numpy.ndarray
        float32 (C, H, W), filtered.
    """
    guide = np.asarray(guide, dtype=np.float32)
    ratio = np.float32(sigma_spatial / sigma_range)
    # distance to the previous pixel along each axis, in the transformed domain
    step_x = np.ones_like(guide)
    step_x[:, 1:] += ratio * np.abs(np.diff(guide, axis=1))
    step_y = np.ones_like(guide)
    step_y[1:, :] += ratio * np.abs(np.diff(guide, axis=0))
    step_x = np.ascontiguousarray(step_x.T)
    rows = np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(1, 0, 2))
    for i in range(iterations):
        sigma_i = sigma_spatial * np.sqrt(3.0) * 2.0 ** (iterations - i - 1)
        sigma_i /= np.sqrt(4.0**iterations - 1.0)
        decay = np.float32(np.exp(-np.sqrt(2.0) / sigma_i))
        columns = np.ascontiguousarray(rows.transpose(2, 1, 0))  # (W, C, H)
        _recursive_pass(columns, decay**step_x)
        rows = np.ascontiguousarray(columns.transpose(2, 1, 0))  # (H, C, W)
        _recursive_pass(rows, decay**step_y)
    return np.ascontiguousarray(rows.transpose(1, 0, 2))
