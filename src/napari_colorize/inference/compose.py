"""Full-resolution colours from the input's own lightness and working-size ab.

ab is upsampled bilinearly onto the full-resolution L and converted to sRGB in
blocks of rows (bounded memory at any image size), with the one gamut policy of
:func:`napari_colorize.color.l_ab_to_rgb_torch`: colours outside the sRGB gamut
move towards the gray of the same luminance, so lightness never changes.
"""

from __future__ import annotations

import numpy as np

from ..color import l_ab_to_rgb_torch, srgb_lut
from .reading import INLINE, Workers

__all__ = ["Composer", "bilinear_taps"]

#: Blocks of about this many pixels are what one worker thread converts at a time.
_BLOCK_PIXELS = 1 << 15


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
        self.lut = srgb_lut(device)
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

        :func:`napari_colorize.color.l_ab_to_rgb_torch`: the one gamut policy
        (towards the gray of the same luminance). A GPU always applies the move
        rather than checking for colours out of gamut (a sync).
        """
        l_ab_to_rgb_torch(lightness, ab, out, self.lut, always_fit=self.whole_strips)
