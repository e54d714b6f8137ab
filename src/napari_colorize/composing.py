"""Full-resolution colours from the input's own lightness and working-size ab.

ab is upsampled bilinearly onto the full-resolution L and converted to sRGB in
blocks of rows (bounded memory at any image size). Colours outside the sRGB
gamut move towards the gray of the same luminance, so lightness never changes.
"""

from __future__ import annotations

import numpy as np

from .color import _F_INV_SWITCH, _KAPPA, _XYZ_FROM_RGB, WHITE_D65
from .reading import INLINE, Workers

__all__ = ["Composer", "bilinear_taps", "f_inverse"]

#: Blocks of about this many pixels are what one worker thread converts at a time.
_BLOCK_PIXELS = 1 << 15
#: Resolution of the linear-light -> sRGB uint8 lookup table.
_LUT_SIZE = 1 << 16
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)


def bilinear_taps(n_out: int, n_in: int, torch, device):
    """Source rows and weights of a bilinear resize along one axis.

    The same sampling as ``F.interpolate(mode="bilinear", align_corners=False)``,
    so the vertical half of the upsampling can be done a few rows at a time.
    """
    # float64 on the CPU (MPS has none), then moved
    pos = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = pos.clamp_(min=0.0)
    i0 = pos.floor().long().clamp_(max=n_in - 1)
    i1 = (i0 + 1).clamp_(max=n_in - 1)
    frac = (pos - i0).to(torch.float32)
    return i0.to(device), i1.to(device), frac.to(device)


class Composer:
    """Full-resolution results from L and working-size ab, in blocks of rows.

    On the CPU, blocks of about ``_BLOCK_PIXELS`` (cache-sized) are spread over
    a pool of single-threaded workers: with many small elementwise steps this is
    several times faster than torch's own threading over large tensors, and it
    degrades gracefully when other processes share the cores.
    """

    def __init__(self, torch, device, workers: Workers):
        self.torch = torch
        self.device = device
        # on a GPU one strip is one block: the device parallelises it
        self.whole_strips = device.type != "cpu"
        self.workers = INLINE if self.whole_strips else workers
        self.rgb_from_xyz = [[float(v) for v in row] for row in _RGB_FROM_XYZ]
        lin = np.linspace(0.0, 1.0, _LUT_SIZE + 1)
        srgb = np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)
        self.lut = torch.from_numpy(np.round(srgb * 255.0).astype(np.uint8)).to(device)
        self._taps = None

    def widen(self, ab, width: int):
        """Horizontal half of the bilinear upsampling: (2, h, w) -> (2, h, width)."""
        import torch.nn.functional as F

        if ab.shape[-1] == width:
            return ab
        size = (ab.shape[-2], width)
        return F.interpolate(ab[None], size=size, mode="bilinear", align_corners=False)[0]

    def _rows_taps(self, height: int, h: int):
        if self._taps is None or self._taps[0] != (height, h):
            self._taps = ((height, h), bilinear_taps(height, h, self.torch, self.device))
        return self._taps[1]

    def rows(self, abw, r0: int, r1: int, height: int):
        """Vertical half of the upsampling: rows ``r0:r1`` of ``height``, (2, r1 - r0, W)."""
        h = abw.shape[1]
        if h == height:
            return abw[:, r0:r1]
        i0, i1, frac = self._rows_taps(height, h)
        top = abw.index_select(1, i0[r0:r1])
        return top.lerp_(abw.index_select(1, i1[r0:r1]), frac[r0:r1, None])

    def fill(self, lightness: np.ndarray, abw, r0: int, r1: int, target: np.ndarray, output):
        """Write rows ``r0:r1`` of the result into ``target`` (a numpy array of those rows)."""
        torch = self.torch
        height, width = lightness.shape
        gpu = self.whole_strips
        step = (r1 - r0) if gpu else max(1, _BLOCK_PIXELS // width)
        self._rows_taps(height, abw.shape[1])  # once, before the workers share them

        def block(b0):
            b1 = min(r1, b0 + step)
            with torch.inference_mode():
                ab = self.rows(abw, b0, b1, height)
                light = torch.from_numpy(lightness[b0:b1])
                if gpu:
                    light = light.to(self.device, non_blocking=True)
                channels = target.shape[-1]
                dtype = torch.uint8 if output == "rgb" else torch.float32
                if gpu:
                    result = torch.empty(
                        (b1 - b0, width, channels), dtype=dtype, device=self.device
                    )
                else:
                    result = torch.from_numpy(target[b0 - r0 : b1 - r0])
                if output == "rgb":
                    self.rgb(light, ab, result)
                elif output == "ab":
                    result.copy_(ab.permute(1, 2, 0))
                else:
                    result[..., 0].copy_(light)
                    result[..., 1:].copy_(ab.permute(1, 2, 0))
                if gpu:
                    target[b0 - r0 : b1 - r0] = result.cpu().numpy()

        self.workers.map(block, range(r0, r1, step))

    def rgb(self, lightness, ab, out) -> None:
        """sRGB uint8 of L (rows, W) and ab (2, rows, W) into ``out`` (rows, W, 3), keeping L.

        Lab outside the sRGB gamut is moved towards the gray of the same
        luminance Y in linear RGB (Y is a fixed positive mix of linear R, G, B
        summing to 1, so the move keeps Y and hence L), just far enough to fit.
        """
        torch = self.torch
        fy = lightness.add(16.0).mul_(1.0 / 116.0)
        x = f_inverse(torch.add(fy, ab[0], alpha=1.0 / 500.0)).mul_(WHITE_D65[0])
        z = f_inverse(torch.add(fy, ab[1], alpha=-1.0 / 200.0)).mul_(WHITE_D65[2])
        lum = f_inverse(fy).clamp_(0.0, 1.0)
        lin = []
        for m in self.rgb_from_xyz:
            lin.append(torch.mul(x, m[0]).add_(lum, alpha=m[1]).add_(z, alpha=m[2]))
        del x, z
        hi = torch.maximum(torch.maximum(lin[0], lin[1]), lin[2])
        lo = torch.minimum(torch.minimum(lin[0], lin[1]), lin[2])
        # the common case, all in gamut, skips the move (a sync on a GPU, so only on the CPU)
        if self.whole_strips or bool(hi.max() > 1.0) or bool(lo.min() < 0.0):
            eps = 1e-12
            # >= 1 where that side is in gamut, since lo <= lum <= hi
            scale = torch.rsub(lum, 1.0).div_(hi.sub_(lum).clamp_(min=eps))
            scale = torch.minimum(scale, lum.div(torch.rsub(lo, lum).clamp_(min=eps)))
            scale = scale.clamp_(max=1.0)
            for c in lin:
                c.sub_(lum).mul_(scale).add_(lum)
        for channel, c in enumerate(lin):
            index = c.clamp_(0.0, 1.0).mul_(_LUT_SIZE).add_(0.5).to(torch.int32)
            out[..., channel] = self.lut.index_select(0, index.view(-1)).view(index.shape)


def f_inverse(f):
    """Inverse of Lab's f(), in place: f**3 above 6/29, linear below.

    Written as ``max(f, s)**3 + (min(f, s) - s) / kappa`` (s = 6/29), which is
    the same function (the two parts meet at s) with fewer passes over memory.
    """
    cube = f.clamp(min=_F_INV_SWITCH).pow_(3)
    lower = f.clamp_(max=_F_INV_SWITCH)
    return cube.add_(lower, alpha=1.0 / _KAPPA).sub_(_F_INV_SWITCH / _KAPPA)
