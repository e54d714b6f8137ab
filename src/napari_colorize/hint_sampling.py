"""Hints sampled from the true colours, for training and for scoring a model given hints.

Two recipes, both in the package's hint format (:mod:`napari_colorize.models.hint_format`):

- :func:`sample_hints` (with :func:`hint_counts`), as Zhang et al. 2017 train and
  measure: a geometric number of hints per image (none one time in eight), each at
  a random (or error-weighted) pixel revealing the mean colour of a small square
  patch. The hint-aware ``beta``/``full`` trainer (:mod:`napari_colorize.training.hints`)
  and :func:`napari_colorize.evaluation.evaluate_hints` use it.
- :func:`sample_pixel_hints`, the ``gan`` trainer's (:mod:`napari_colorize.training.gan`):
  single pixels at a random per-image rate, a fraction of the images without any.
  It stays a recipe of its own: it draws from the torch RNG of ``ab``'s device in
  its own order, so replacing it would change the hints of every saved and resumed
  GAN run and the published ``gan-quality`` figures.

torch is imported only by the functions that need it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_HINT_P", "hint_counts", "sample_hints", "sample_pixel_hints"]

#: Zhang et al. 2017 draw the number of hints per training image from a geometric
#: distribution with p = 1/8: none with probability 1/8, 7 on average.
DEFAULT_HINT_P = 0.125


def _torch_generator(rng):
    """A CPU ``torch.Generator`` for ``rng`` (None: torch's global one)."""
    import torch

    if rng is None:
        return None
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, np.random.Generator):
        return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return torch.Generator().manual_seed(int(rng))
    raise ValueError(
        f"rng must be None (torch's global RNG), an int seed, a torch.Generator or a "
        f"numpy Generator, got {type(rng).__name__}"
    )


def hint_counts(n_images: int, p: float = DEFAULT_HINT_P, rng=None, max_hints: int | None = None):
    """How many hints each image gets: geometric, ``P(k) = (1 - p)**k * p`` for k = 0, 1, ...

    As Zhang et al. 2017 train: with ``p = 1/8`` an image gets no hint one time
    in eight and 7 hints on average, so the model learns both to colorize alone
    and to follow hints.

    Parameters
    ----------
    n_images : int
    p : float
        In (0, 1]; 1 gives no hints at all.
    rng : None, int, torch.Generator or numpy.random.Generator
        None draws from torch's global RNG (which the trainer saves and restores).
    max_hints : int, optional
        Cap per image.

    Returns
    -------
    torch.Tensor
        int64 ``(n_images,)``.
    """
    import torch

    if not 0.0 < float(p) <= 1.0:
        raise ValueError(f"the geometric parameter p must lie in (0, 1], got {p}")
    u = torch.rand(int(n_images), generator=_torch_generator(rng), dtype=torch.float64)
    if p >= 1.0:
        counts = torch.zeros(int(n_images), dtype=torch.int64)
    else:
        counts = torch.floor(torch.log1p(-u) / math.log1p(-float(p))).to(torch.int64)
    if max_hints is not None:
        counts = counts.clamp_(max=int(max_hints))
    return counts


def _radius_range(radius) -> tuple[int, int]:
    if isinstance(radius, (int, np.integer)) and not isinstance(radius, bool):
        lo = hi = int(radius)
    else:
        try:
            lo, hi = (int(r) for r in radius)
        except (TypeError, ValueError):
            raise ValueError(
                f"radius must be an int or a (min, max) pair of ints, got {radius!r}"
            ) from None
    if lo < 0 or hi < lo:
        raise ValueError(f"radius must satisfy 0 <= min <= max, got {radius!r}")
    return lo, hi


def sample_hints(ab, n, rng=None, radius=1, weights=None):
    """Hints revealed from the true colours, as Zhang et al. 2017 train and measure.

    Each hint sits at a uniformly random pixel and reveals the mean ab of the
    square patch of half-width ``radius`` around it (side ``2 radius + 1``,
    clipped at the border), painted over that patch with mask 1. Where patches
    overlap their colours are averaged.

    Parameters
    ----------
    ab : torch.Tensor or numpy.ndarray
        ``(N, 2, H, W)`` true ab as ``ab_to_net(ab)`` (what the datasets yield).
    n : int or sequence of int or torch.Tensor
        Hints per image: one number for all, or one per image (e.g. from :func:`hint_counts`).
    rng : None, int, torch.Generator or numpy.random.Generator
        Where positions and patch sizes come from; None: torch's global RNG
        (saved by the trainer, so a resumed run draws the same hints). A fixed
        int gives the same hints for the same ``ab`` shape and ``n`` every time.
    radius : int or (int, int)
        Patch half-width, or a range ``(min, max)`` drawn uniformly per hint.
    weights : torch.Tensor, optional
        ``(N, H, W)`` non-negative: hint positions are drawn with probability
        proportional to them (e.g. a model's error, to hint where it is wrong)
        instead of uniformly.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        ``(N, 3, H, W)`` in the package's hint format, of the input's type,
        dtype and device.
    """
    import torch
    import torch.nn.functional as F

    as_numpy = isinstance(ab, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(ab, dtype=np.float32)) if as_numpy else ab
    if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != 2:
        shape = tuple(getattr(ab, "shape", ()))
        raise ValueError(f"ab must be (N, 2, H, W) in ab_to_net units, got shape {shape}")
    n_img, _, h, w = t.shape
    counts = torch.as_tensor(n, dtype=torch.int64).flatten().cpu()
    if counts.numel() == 1:
        counts = counts.expand(n_img)
    if counts.numel() != n_img or bool((counts < 0).any()):
        raise ValueError(
            f"n must be one count >= 0 or one per image ({n_img}), got {tuple(counts.tolist())}"
        )
    lo, hi = _radius_range(radius)
    gen = _torch_generator(rng)
    total = int(counts.sum())
    image = torch.repeat_interleave(torch.arange(n_img), counts)
    if weights is None:
        ys = torch.randint(0, h, (total,), generator=gen)
        xs = torch.randint(0, w, (total,), generator=gen)
    else:
        wt = torch.as_tensor(weights, dtype=torch.float64).detach().cpu().reshape(n_img, h * w)
        if wt.shape != (n_img, h * w) or bool((wt < 0).any()) or not bool(wt.isfinite().all()):
            raise ValueError(f"weights must be finite, >= 0 and of shape {(n_img, h, w)}")
        wt = torch.where(wt.sum(1, keepdim=True) > 0, wt, torch.ones_like(wt))
        most = int(counts.max()) if total else 0
        flat = torch.zeros((n_img, 0), dtype=torch.int64)
        if most:
            flat = torch.multinomial(wt, most, replacement=True, generator=gen)
        keep = torch.arange(most)[None, :] < counts[:, None]
        flat = flat[keep]  # image-major, as ``image``
        ys, xs = flat // w, flat % w
    rs = (
        torch.randint(lo, hi + 1, (total,), generator=gen)
        if hi > lo
        else torch.full((total,), lo, dtype=torch.int64)
    )
    dev = t.device
    with torch.no_grad():
        src = t.detach().float()
        sums = torch.zeros((n_img, h, w, 2), device=dev)
        hits = torch.zeros((n_img, h, w), device=dev)
        for r in sorted(set(rs.tolist())):
            sel = rs == r
            b, y, x = image[sel], ys[sel], xs[sel]
            if r:
                k = 2 * r + 1
                mean = F.avg_pool2d(src, k, stride=1, padding=r, count_include_pad=False)
            else:
                mean = src
            colours = mean[b.to(dev), :, y.to(dev), x.to(dev)]  # (k, 2)
            off = torch.arange(-r, r + 1)
            yy = (y[:, None, None] + off[None, :, None]).expand(-1, 2 * r + 1, 2 * r + 1)
            xx = (x[:, None, None] + off[None, None, :]).expand(-1, 2 * r + 1, 2 * r + 1)
            bb = b[:, None, None].expand_as(yy)
            valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            which = valid.nonzero()[:, 0].to(dev)
            idx = (bb[valid].to(dev), yy[valid].to(dev), xx[valid].to(dev))
            sums.index_put_(idx, colours[which], accumulate=True)
            hits.index_put_(idx, torch.ones_like(which, dtype=hits.dtype), accumulate=True)
        mask = (hits > 0).to(src.dtype)
        ab_hint = sums / hits.clamp(min=1.0)[..., None]
        out = torch.cat([ab_hint.permute(0, 3, 1, 2), mask[:, None]], dim=1)
    if as_numpy:
        return out.numpy().astype(np.asarray(ab).dtype, copy=False)
    return out.to(t.dtype)


def sample_pixel_hints(ab, mean_points: float = 10.0, dropout: float = 0.1):
    """Random user hints drawn from the true ``ab`` (the package's hint format, N,3,H,W).

    Each image gets hints at random pixels, on average ``mean_points`` of them
    (a per-image rate drawn uniformly from ``[0, 2 * mean_points / (H W)]``),
    except a fraction ``dropout`` of the images that get none. Uses the global
    torch RNG of ``ab``'s device, which the trainer saves, so resuming is exact.
    """
    import torch

    n, _, h, w = ab.shape
    rate = torch.rand(n, 1, 1, 1, device=ab.device) * (2.0 * mean_points / (h * w))
    rate = rate * (torch.rand(n, 1, 1, 1, device=ab.device) >= dropout)
    mask = (torch.rand(n, 1, h, w, device=ab.device) < rate).to(ab.dtype)
    return torch.cat([ab * mask, mask], dim=1)
