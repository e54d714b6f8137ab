"""Colours learned in seconds from a colour reference of the same kind of scene or tissue.

The reference's colours are explained by its lightness textures: each pixel is
described by features of L at several scales (local mean, spread, gradient
magnitude, band-pass detail) and a small network learns ab from them on a
sample of the reference's pixels (a few hundred steps, about a second on a
CPU). A gray image is then described the same way, its ab predicted, and
aligned with its lightness edges by a guided filter.

Where the reference does not explain the target, the colours fall back
towards gray: a second small network learns to tell the target's features
from the reference's; the share of the target that the reference covers
(where the reference's feature density is not much below the target's) sets
how much of the predicted colour is kept. Halves of one photo or section
cover each other; a stained section does not cover a photograph.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .filters import guided_filter

__all__ = ["ReferenceColorizer", "as_reference_list"]

#: Gaussian scales (pixels) of the lightness features.
SCALES = (1.0, 2.0, 4.0, 8.0, 16.0)
#: Reference pixels kept for fitting.
_SAMPLES = 1 << 18
#: A target pixel is covered where p_ref / p_target is at least this...
_COVER_RATIO = 0.1
#: Whether pixels the reference does not cover lose their colour too (not only planes).
_PIXEL_COVER = True
#: A pixel keeps all its colour where p_ref / p_target is at least this.
_PIXEL_RATIO = 0.05
#: Noise (in standardized feature units) the coverage test learns through.
_COVER_NOISE = 0.5
#: ...and all colour is kept above this covered share, none below the lower one.
_COVER_FULL, _COVER_NONE = 0.7, 0.4


def as_reference_list(reference) -> list[np.ndarray]:
    """Reference images as a list of (H, W, 3) RGB arrays (uint8, uint16 or float in [0, 1]).

    Parameters
    ----------
    reference : array-like or sequence of array-like
        One RGB/RGBA image ``(H, W, 3|4)``, a stack ``(..., H, W, 3|4)`` or a
        list of them.

    Raises
    ------
    ValueError
        For anything that is not colour (a gray image, a wrong channel count,
        non-finite or out-of-range floats).
    """
    items = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if not items:
        raise ValueError("the reference list is empty; give at least one RGB image")
    planes = []
    for i, item in enumerate(items):
        what = "the reference" if len(items) == 1 else f"reference {i}"
        array = np.asarray(item)
        if array.ndim < 3 or array.shape[-1] not in (3, 4):
            raise ValueError(
                f"{what} has shape {array.shape}; a colour reference must be RGB or RGBA with "
                "the colour on the last axis, e.g. (H, W, 3)"
            )
        array = array[..., :3]
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{what} holds NaN or infinite values")
            if array.size and (array.min() < -1e-3 or array.max() > 1.0 + 1e-3):
                raise ValueError(
                    f"{what} is float with values in [{array.min():.3g}, {array.max():.3g}]; "
                    "float references must be in [0, 1] (or give uint8/uint16)"
                )
            array = np.clip(array, 0.0, 1.0).astype(np.float32)
        elif array.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"{what} has dtype {array.dtype}; give uint8, uint16 or float in [0, 1]"
            )
        flat = array.reshape(-1, *array.shape[-3:])
        for plane in flat:
            if min(plane.shape[:2]) < 4:
                raise ValueError(f"{what} is {plane.shape[:2]} pixels: too small to learn from")
            planes.append(plane)
    return planes


def _gaussian(x, sigma: float):
    """Separable Gaussian blur of (N, C, H, W), edges replicated."""
    import torch
    import torch.nn.functional as F

    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def lightness_features(lightness: np.ndarray):
    """Per-pixel features of L: (H * W, F) float32 torch tensor.

    L itself, then at each of :data:`SCALES` the local mean, the local
    standard deviation, the gradient magnitude of the smoothed L (times the
    scale) and the band-pass detail (the previous scale minus this one).
    """
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32))[None, None]
        x = x / 100.0
        both = torch.cat([x, x * x], dim=1)
        features = [x]
        previous = x
        for sigma in SCALES:
            blurred = _gaussian(both, sigma)
            mean, mean_sq = blurred[:, :1], blurred[:, 1:]
            spread = (mean_sq - mean * mean).clamp_(min=0.0).sqrt_()
            padded = F.pad(mean, (1, 1, 1, 1), mode="replicate")
            gy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
            gx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
            gradient = (gx * gx + gy * gy).sqrt_().mul_(sigma / 2.0)
            features += [mean, spread, gradient, previous - mean]
            previous = mean
        stacked = torch.cat(features, dim=1)[0]
        return stacked.reshape(stacked.shape[0], -1).T.contiguous()


@contextlib.contextmanager
def _one_thread():
    """Run torch on one CPU thread for a while.

    The fits are hundreds of small steps: a second thread gains at most 2x
    on an idle machine and loses 10x when another process busies the cores
    (its threads spin waiting for each other).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mlp(n_in: int, hidden: int, n_out: int):
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.GELU(),
        torch.nn.Linear(hidden, n_out),
    )


def _shrink(lightness: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return lightness
    import torch
    import torch.nn.functional as F

    h, w = lightness.shape
    size = (max(4, round(h * scale)), max(4, round(w * scale)))
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32))[None]
        return F.interpolate(x[None], size=size, mode="area")[0, 0].numpy()


class ReferenceColorizer:
    """Predict ab for gray images from one or more colour references.

    Parameters
    ----------
    reference : array-like or sequence of array-like
        RGB/RGBA uint8, uint16 or float [0, 1] images (see :func:`as_reference_list`).
    steps : int
        Optimizer steps of the colour regressor (and of the coverage test).
    hidden : int
        Width of the regressor's two hidden layers.
    smooth_radius : int
        Radius in pixels of the guided filter aligning colours with lightness edges.
    seed : int
        Seed of the sampling and the initial weights: the same inputs give the same colours.

    Notes
    -----
    The fit happens on the first :meth:`predict_ab` (or :meth:`prepare`), at
    the scale the target is colorized at, so reference and target textures are
    compared at the same magnification; one fit serves every plane of a stack.
    """

    name = "reference"

    def __init__(
        self,
        reference,
        *,
        steps: int = 400,
        hidden: int = 64,
        smooth_radius: int = 8,
        seed: int = 0,
    ):
        from ..color import rgb_to_lab

        self.references = [rgb_to_lab(p).astype(np.float32) for p in as_reference_list(reference)]
        self.steps = int(steps)
        self.hidden = int(hidden)
        self.smooth_radius = int(smooth_radius)
        self.seed = int(seed)
        self._scale = None
        self._fit = None
        self._coverage_net = None
        #: Share of colour kept on the last plane (1: the reference covers it).
        self.last_coverage: float | None = None

    def __repr__(self) -> str:
        shapes = ", ".join(f"{r.shape[0]}x{r.shape[1]}" for r in self.references)
        return f"ReferenceColorizer({shapes})"

    # ------------------------------------------------------------ fitting

    def prepare(self, scale: float = 1.0) -> None:
        """Fit to the references shrunk by ``scale`` (the target's working scale), once."""
        scale = min(1.0, float(scale))
        if self._fit is not None and math.isclose(scale, self._scale, rel_tol=1e-3):
            return
        import torch

        generator = torch.Generator().manual_seed(self.seed)
        feats, targets = [], []
        total = sum(r.shape[0] * r.shape[1] for r in self.references)
        for lab in self.references:
            lightness = _shrink(lab[..., 0], scale)
            f = lightness_features(lightness)
            ab = torch.from_numpy(
                np.stack([_shrink(lab[..., c], scale) for c in (1, 2)], axis=-1).reshape(-1, 2)
            )
            keep = max(1, round(_SAMPLES * lab.shape[0] * lab.shape[1] / total))
            if f.shape[0] > keep:
                pick = torch.randperm(f.shape[0], generator=generator)[:keep]
                f, ab = f[pick], ab[pick]
            feats.append(f)
            targets.append(ab)
        features = torch.cat(feats)
        ab = torch.cat(targets)
        mean, std = features.mean(0), features.std(0).clamp(min=1e-4)
        x = (features - mean) / std
        net = self._train(x, ab / 128.0, generator, loss="l1")
        self._fit = (net, mean, std, x)
        self._scale = scale
        self._coverage_net = None

    def _train(self, x, y, generator, loss: str, batch: int = 4096):
        import torch
        import torch.nn.functional as F

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            net = _mlp(x.shape[1], self.hidden if loss == "l1" else self.hidden // 2, y.shape[1])
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        batch = min(batch, x.shape[0])  # a small reference: no point in repeating samples
        with torch.enable_grad(), _one_thread():
            for _ in range(self.steps):
                pick = torch.randint(0, x.shape[0], (batch,), generator=generator)
                inputs = x[pick]
                if loss != "l1" and _COVER_NOISE:
                    # kernel-smoothed densities: tiny feature differences are not separable
                    noise = torch.randn(inputs.shape, generator=generator)
                    inputs = inputs + _COVER_NOISE * noise
                out = net(inputs)
                if loss == "l1":
                    value = (out - y[pick]).abs().mean()
                else:
                    value = F.binary_cross_entropy_with_logits(out, y[pick])
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                optimizer.step()
        net.eval()
        return net

    def _coverage(self, features):
        """How much colour to keep: (share for the plane, per-pixel share (H * W,))."""
        import torch

        _, mean, std, ref_x = self._fit
        x = (features - mean) / std
        if self._coverage_net is None:
            generator = torch.Generator().manual_seed(self.seed + 1)
            n = min(ref_x.shape[0], x.shape[0])
            both = torch.cat(
                [
                    ref_x[torch.randint(0, ref_x.shape[0], (n,), generator=generator)],
                    x[torch.randint(0, x.shape[0], (n,), generator=generator)],
                ]
            )
            labels = torch.cat([torch.ones(n, 1), torch.zeros(n, 1)])
            self._coverage_net = self._train(both, labels, generator, loss="bce", batch=2048)
        with torch.inference_mode():
            ratio = self._coverage_net(x)[:, 0].exp()  # p_reference / p_target
        covered = float((ratio / _COVER_RATIO).clamp(max=1.0).mean())
        pixels = (ratio / _PIXEL_RATIO).clamp(max=1.0)
        share = float(np.clip((covered - _COVER_NONE) / (_COVER_FULL - _COVER_NONE), 0.0, 1.0))
        return share, pixels.numpy()

    # ------------------------------------------------------------ predicting

    def predict_ab(self, lightness: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        """ab of one gray plane.

        Parameters
        ----------
        lightness : numpy.ndarray
            L in [0, 100], (H, W), at the working size.
        hints : ignored
            Hints are applied on top by the caller (see :class:`HintPropagator`).

        Returns
        -------
        numpy.ndarray
            float32 (H, W, 2) in Lab units.
        """
        import torch

        if self._fit is None:
            self.prepare(1.0)
        net, mean, std, _ = self._fit
        features = lightness_features(lightness)
        with torch.inference_mode():
            ab = net((features - mean) / std).mul_(128.0)
        share, pixels = self._coverage(features)
        ab = ab.reshape(*lightness.shape, 2).numpy()
        if _PIXEL_COVER:
            ab = ab * pixels.reshape(*lightness.shape, 1)
        if self.smooth_radius:
            ab = guided_filter(lightness / 100.0, ab, radius=self.smooth_radius, eps=1e-3)
        self.last_coverage = share
        return (ab * share).astype(np.float32, copy=False)
