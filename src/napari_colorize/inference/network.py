"""A network's prediction at the working size: tiles, batches, precision, OOM fallback.

:class:`NetworkSteps` holds the :class:`~.colorizer.Colorizer`'s steps that run its
network: the tiling of a working-size plane (aligned to the network, overlapping by
the context it needs), the working-size inputs of a group of planes, one forward
pass (channels last, autocast, the model contract checked) and the tiled, batched
prediction that settles "auto" precision first and halves the batch, then the tile,
when CUDA runs out of memory.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..color import AB_SCALE, l_to_net
from ..models.hint_format import HINT_CHANNELS
from .context import CROSS_FADE, context_margin
from .precision import MAX_COLOUR_CHANGE, check_windows, colour_change
from .progress import ColorizeProgress
from .tiling import Tiling

__all__ = ["MAX_GPU_BATCH", "NetworkSteps", "pixels_that_fit"]

#: Smallest tile the out-of-memory fallback goes down to.
_MIN_TILE = 32
#: Most tiles in one pass on a GPU when the batch follows the free memory.
MAX_GPU_BATCH = 64
#: Share of the free GPU memory the forward passes may plan to use.
GPU_MEMORY_SHARE = 0.5
#: The tiles' overlap where ``overlap="auto"`` cannot measure the network's context.
_FALLBACK_OVERLAP = 64


def free_cuda_memory(device) -> int:
    """Bytes of CUDA memory free on ``device`` (to this process and others)."""
    import torch

    return int(torch.cuda.mem_get_info(device)[0])


def pixels_that_fit(free_bytes: int, bytes_per_pixel: float, share: float = GPU_MEMORY_SHARE):
    """Input pixels one forward pass may take so that it uses ``share`` of ``free_bytes``.

    Examples
    --------
    >>> pixels_that_fit(8 * 2**30, 2048.0)  # 8 GiB free, 2 KiB of activations per pixel
    2097152
    """
    return max(1, int(free_bytes * share / max(bytes_per_pixel, 1.0)))


class NetworkSteps:
    """The network steps of :class:`~.colorizer.Colorizer` (a mixin: uses its attributes)."""

    def tile_overlap(self) -> int:
        """The tiles' overlap in working-size pixels (``overlap="auto"`` measured on first use)."""
        return self._overlap_and_fade()[0]

    def _overlap_and_fade(self) -> tuple[int, int | None]:
        if self.overlap != "auto":
            return self.overlap, None
        if self._overlap is None:
            self._overlap = (_FALLBACK_OVERLAP, None)
            if self.model is not None:
                try:
                    margin = context_margin(self.model, self._probe_forward)
                except Exception:  # a network that needs inputs the probe cannot make
                    margin = None  # (None too where the output depends on the whole image)
                if margin is not None:
                    self._overlap = (2 * margin + CROSS_FADE, CROSS_FADE)
        return self._overlap

    def _tiling(self, work: tuple[int, int], tile: int) -> Tiling:
        """Tiles of at most ``tile`` px over a working-size plane, aligned for the network."""
        import torch

        if max(work) <= tile:
            return Tiling.build(work, tile, 0, torch, self.device)
        overlap, fade = self._overlap_and_fade()
        # starts on the network's own grid, but never a grid coarser than a quarter tile
        align = max(1, min(int(getattr(self.model, "downsampling", None) or 8), tile // 4))
        return Tiling.build(work, tile, overlap, torch, self.device, align, fade)

    def _probe_forward(self, x, dtype=None):
        """The network on one probe input ``x`` (1, 1, h, w), with no hints."""
        import torch

        x = x.to(self.device)
        cond = {}
        if self.model_takes_hints:  # no hints: zeros, as a run without hints gives it
            cond["hints"] = torch.zeros((1, HINT_CHANNELS, *x.shape[-2:]), device=self.device)
        return self._forward(x, cond, dtype)

    def _working_inputs(self, group, work, hints):
        """``(l_work, cond)``: the group's CIE L (B, 1, h, w) and hint maps at the working size."""
        import torch
        import torch.nn.functional as F

        def shrink(x):  # (N, C, H, W) float32 on the CPU
            if tuple(x.shape[-2:]) == work:
                return x
            return F.interpolate(x, size=work, mode="area")

        with torch.inference_mode():
            parts = [shrink(torch.from_numpy(lightness)[None, None]) for _, lightness in group]
            # CIE L: the network's units are made per pass, so that at full
            # resolution no second plane-sized copy is held
            l_work = self._to_device(parts[0] if len(parts) == 1 else torch.cat(parts))
            cond = {}
            for name, (value, per_plane) in hints.items():
                maps = []
                for index, _ in group:
                    v = np.asarray(value[index] if per_plane else value, dtype=np.float32)
                    v = torch.from_numpy(v).permute(2, 0, 1)[None]
                    if name == "hints" and v.shape[1] == 3 and tuple(v.shape[-2:]) != work:
                        mask = shrink(v[:, 2:3])
                        ab = shrink(v[:, :2] * v[:, 2:3]) / mask.clamp(min=1e-12)
                        v = torch.cat([ab, (mask > 0).to(ab.dtype)], dim=1)
                    else:
                        v = shrink(v)
                    maps.append(v)
                cond[name] = self._to_device(torch.cat(maps))
        return l_work, cond

    def _to_device(self, tensor):
        """``tensor`` on the device; to CUDA through pinned memory, not waiting for the copy."""
        if self.device.type != "cuda":
            return tensor.to(self.device)
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _pixels_per_pass(self, tile_pixels: int) -> int:
        """How many tiles of ``tile_pixels`` one forward pass takes (before any OOM fallback)."""
        per_pass = self._batch
        if self._batch_pixels is not None:  # the CPU's cache-sized passes
            return max(1, min(per_pass, self._batch_pixels // tile_pixels))
        if self.device.type == "cuda" and self._auto_batch:
            if self._gpu_pixels is None:
                self._gpu_pixels = pixels_that_fit(
                    free_cuda_memory(self.device), self._bytes_per_pixel()
                )
            return max(1, min(MAX_GPU_BATCH, self._gpu_pixels // tile_pixels))
        return per_pass

    def _bytes_per_pixel(self) -> float:
        """CUDA memory one input pixel takes in a forward pass (peak of a 256² pass, measured)."""
        import torch

        side = 256
        torch.cuda.synchronize(self.device)
        base = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self._probe_forward(torch.zeros((1, 1, side, side)), self.autocast_dtype)
        torch.cuda.synchronize(self.device)
        return max(1.0, (torch.cuda.max_memory_allocated(self.device) - base) / side**2)

    def _forward(self, x, cond, dtype):
        """The network's ab (N, 2, h, w) in its own units, autocast to ``dtype`` (or None)."""
        import torch

        with torch.inference_mode():
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
                cond = {
                    k: v.contiguous(memory_format=torch.channels_last) for k, v in cond.items()
                }
            ctx = (
                torch.autocast(self.device.type, dtype=dtype)
                if dtype is not None
                else contextlib.nullcontext()
            )
            with ctx:
                y = self.model(x, **cond)
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != (
                x.shape[0],
                2,
                *tuple(x.shape[-2:]),
            ):
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ValueError(
                    f"the model returned {got} for an input of shape {tuple(x.shape)}; "
                    "a colorization model must return ab of shape (N, 2, H, W)"
                )
            return y.float()

    def _release_memory(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _check_precision(self, l_work, cond, state, first_index):
        """Generator: settle "auto" precision on nine windows of the run's first plane.

        bf16 for the rest of the run if it keeps the colours within
        :data:`.precision.MAX_COLOUR_CHANGE` of float32 there (see :mod:`.precision`).
        """
        import torch

        state.check_precision = False
        windows = check_windows(tuple(l_work.shape[-2:]))
        lightness = torch.stack([l_work[0, :, rows, cols] for rows, cols in windows])
        c = {k: torch.stack([v[0, :, r, q] for r, q in windows]) for k, v in cond.items()}
        change = colour_change(self._forward, lightness, c, torch.bfloat16)
        self.bf16_change = change
        chosen = change <= MAX_COLOUR_CHANGE
        self.autocast_dtype = torch.bfloat16 if chosen else None
        self.precision_used = "bf16" if chosen else "fp32"
        verdict = "within" if chosen else "more than"
        self.precision_reason = (
            f"bf16 moves colours by {change:.3f} CIEDE2000 here, {verdict} {MAX_COLOUR_CHANGE}"
        )
        yield ColorizeProgress(
            state.done, state.total, first_index,
            f"precision {self.precision_used}: {self.precision_reason}",
        )  # fmt: skip

    def _predict(self, l_work, cond, state, first_index):
        """Generator: ab (B, 2, h, w) in Lab units for the working L, or None if stopped."""
        import torch

        if state.check_precision:
            yield from self._check_precision(l_work, cond, state, first_index)
        oom = getattr(torch.cuda, "OutOfMemoryError", None) or torch.OutOfMemoryError
        batch = l_work.shape[0]
        while True:
            tiling = state.tiling
            (th, tw), n_tiles = tiling.size, len(tiling.tiles)
            single = n_tiles == 1
            # tiles of one shape batch together (the last row and column may be shorter)
            items = sorted(
                ((b, t) for b in range(batch) for t in range(n_tiles)),
                key=lambda item: tiling.tile_shape(item[1]),
            )
            parts = []
            acc = None
            if not single:  # the tiles' weights sum to 1 everywhere: no normalisation
                acc = torch.zeros((batch, 2, *tiling.shape), device=self.device)
            i = 0
            retile = False
            while i < len(items):
                if self._stop.is_set():
                    return None
                per_pass = self._pixels_per_pass(th * tw)
                chunk = items[i : i + per_pass]
                shape = tiling.tile_shape(chunk[0][1])
                chunk = [item for item in chunk if tiling.tile_shape(item[1]) == shape]
                try:
                    if single:
                        b0, b1 = chunk[0][0], chunk[-1][0] + 1
                        x = l_to_net(l_work[b0:b1])
                        c = {k: v[b0:b1] for k, v in cond.items()}
                    else:
                        x = l_to_net(torch.stack([tiling.crop(l_work[b], t) for b, t in chunk]))
                        c = {
                            k: torch.stack([tiling.crop(v[b], t) for b, t in chunk])
                            for k, v in cond.items()
                        }
                    y = self._forward(x, c, self.autocast_dtype)
                except oom as exc:
                    del exc
                    self._release_memory()
                    if len(chunk) > 1:
                        self._batch = max(1, len(chunk) // 2)
                        self._auto_batch = False  # from now on the halved batch
                        message = f"out of memory: batch size lowered to {self._batch}"
                    else:
                        new_tile = max(th, tw) // 2
                        if new_tile < _MIN_TILE:
                            raise RuntimeError(
                                f"out of memory on {self.device} even for one {th}x{tw} tile; "
                                "use a smaller chroma_size, another device (device='cpu') or "
                                "free GPU memory"
                            ) from None
                        self._tile = new_tile
                        state.tiling = self._tiling(tiling.shape, new_tile)
                        state.total = state.done + state.planes_left * (
                            len(state.tiling.tiles) + 1
                        )
                        retile = True
                        message = f"out of memory: tile lowered to {new_tile}"
                    yield ColorizeProgress(state.done, state.total, first_index, message)
                    if retile:
                        break
                    continue
                with torch.inference_mode():
                    if single:
                        parts.append(y)
                    else:
                        for j, (b, t) in enumerate(chunk):
                            tiling.add_weighted(acc[b], t, y[j])
                del y, x, c
                i += len(chunk)
                state.done += len(chunk)
                yield ColorizeProgress(
                    state.done, state.total, first_index, f"tiles {i}/{len(items)}"
                )
            if retile:
                continue
            with torch.inference_mode():
                ab = torch.cat(parts) if single else acc
                return ab.clamp_(-1.0, 1.0).mul_(AB_SCALE)
