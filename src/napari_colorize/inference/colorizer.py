"""The :class:`Colorizer`: one model (or training-free method) over images and stacks.

For each 2D plane it converts the plane to L (:mod:`.reading`), predicts ab at the
working size (:mod:`.network`, :mod:`.tiling`, or a guided method) and writes the
input's own L with that ab at full resolution (:mod:`.compose`); see
:mod:`napari_colorize.inference` for the whole path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import images
from ..devices import precision_name
from ..guided import HintPropagator
from ..temporal import run_sequences
from . import model_cache
from .compose import Composer
from .network import NetworkSteps
from .options import (
    CPU_BATCH_PIXELS,
    DEFAULT_CHROMA_SIZE,
    GUIDED_CHROMA_SIZE,
    GUIDED_METHODS,
    check_positive,
    guided_method,
    hint_maps,
    network_takes_hints,
    temporal_strength,
)
from .precision import (
    MAX_COLOUR_CHANGE,
    cpu_has_fast_bf16,
    precision_asked,
    quality_set_change,
    worth_checking,
)
from .progress import ColorizeProgress
from .reading import INLINE, Lightness, Prefetch, Workers
from .tiling import Tiling

__all__ = ["Colorizer", "colorize"]

#: Row strips of about this many pixels bound the memory of the Lab -> RGB step.
_STRIP_PIXELS = 1 << 20
#: A group of planes read together holds at most about this many pixels of L.
_GROUP_PIXELS = 1 << 24

_OUTPUTS = ("rgb", "lab", "ab")


@dataclass
class _RunState:
    done: int
    total: int
    planes_left: int
    tiling: Tiling
    #: whether "auto" precision is still to be settled by a check on the first plane
    check_precision: bool = False


class Colorizer(NetworkSteps):
    """Colorize images and stacks of any size with one model.

    Parameters
    ----------
    model : torch.nn.Module or str or path-like
        A module honouring the model contract (``forward(l (N,1,H,W)) -> ab
        (N,2,H,W)``, scaled by :mod:`napari_colorize.color`, fully convolutional),
        or a registered model name / checkpoint file, loaded through
        ``registry.load_model`` (and kept in a small cache).
    device : str or torch.device
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:1"``, ...
    tile : int, optional
        Largest side of one network input, at the working size; larger working
        images are split into overlapping tiles. Default 512 on the CPU, 1024 on
        a GPU. Halved automatically (and ``batch_size`` first) when CUDA runs
        out of memory.
    overlap : int or "auto"
        Overlap of neighbouring tiles in working-size pixels (at most half a
        tile). Neighbours cross-fade with a raised cosine over the middle half
        of the overlap; the outer quarters are dropped. ``"auto"`` (default):
        the context the network needs on each side, measured once per network
        (:func:`.context.context_margin`), dropped, and a 16-px cross-fade
        between (64 px, a quarter dropped, where it cannot be measured). Tiles
        start on multiples of the network's downsampling factor, so that they
        colour as the whole image would, and are shrunk to the shortest side
        that covers the image with as many of them (:func:`.tiling.axis_tiles`).
    chroma_size : int, None or "auto"
        The working size: the longest side of the L image the network sees.
        ab is predicted there and upsampled onto the full-resolution L, which
        makes the colours independent of the input size and the work cheap.
        ``None`` or 0: predict at full resolution. Images smaller than this
        are never enlarged. ``"auto"`` decides per image from the model's
        checkpoint (:func:`napari_colorize.cards.auto_working_size`): a model
        trained on native-resolution patches (``extra["native_resolution"]``)
        works at full resolution, tiled; a stored ``extra["chroma_size"]``
        (e.g. 24 for the CryptoPunks models) applies to images up to 4 times
        the model's training image size (``extra["image_size"]``, else
        derived from ``data`` or ``chroma_size``); any other image gets
        :data:`DEFAULT_CHROMA_SIZE` (256), or the stored size if larger. A
        module without a checkpoint gets 256. :attr:`chroma_size` then holds
        the size for images near the training size.
    batch_size : int, optional
        Network inputs (tiles or planes) per forward pass. Default: on CUDA
        as many as fit in half the free memory (measured from one pass, at
        most 64), 16 on MPS, and on the CPU up to 8 but no more than
        :data:`CPU_BATCH_PIXELS` pixels per pass (two 512x512 tiles: at full
        resolution larger batches were slower and held 0.55 GB more at 4096²,
        ``python -m benchmarks.run --suite native``). Halved when CUDA runs out
        of memory, then the tile is.
    hints : array or mapping of str to array, optional
        Colour hints for a hint-aware model, in the package's hint format (see
        :mod:`napari_colorize.models.hint_format`): channel-last ``(H, W, 3)`` = ab hint
        as ``ab_to_net(ab)`` in channels 0-1 and the hint mask in channel 2, at
        the input's resolution, the same for every plane, or
        ``leading_shape + (H, W, 3)``, one per plane, or a
        :class:`~napari_colorize.hints.HintSource` (points, shapes, labels
        placed on the image's grid) that makes them plane by plane. They are passed as
        ``model(l, hints=tensor (N, 3, h, w))``, shrunk to the working size so
        that a hint stays a full-strength hint (mask: any hint in the cell; ab:
        the mask-weighted mean) and tiled like L. A mapping passes other
        per-pixel maps by name (``model(l, name=...)``; ``"hints"`` is treated
        as above, any other name is area-averaged).
    temporal : bool or float
        Colour a stack consistently along the axis napari scrolls (the last
        axis before the image's): hints on any plane carry to the others along
        the motion, and colours are blended with the previous plane's where the
        motion is reliable (see :mod:`napari_colorize.temporal`). A float in
        (0, 1) sets the blend's strength (``True``: 0.8). Off by default: the
        planes of a stack of unrelated images must not be forced together.
    percentiles : (float, float) or None
        For data without a photo range; see :func:`images.intensity_range`.
    precision : {"auto", "fp32", "bf16", "fp16"}
        The network's precision (autocast): ``"auto"`` is bf16 or fp16 on CUDA
        and float32 on MPS; on a CPU with AMX it is bf16 if bf16 moves the
        model's colours by at most 0.1 CIEDE2000 on its quality set, as its
        checkpoint records, and float32 otherwise. For a model without that
        record, a large run (16 tiles or more) first colours nine windows
        spread over its first plane in float32 and bf16 and keeps bf16 if the
        colours move by at most 0.1 there (:mod:`.precision`;
        :attr:`precision_used`, :attr:`precision_reason` and :attr:`bf16_change`
        say what a run used and why). The environment variable ``NAPARI_COLORIZE_PRECISION`` (e.g.
        ``fp32``) sets what "auto" means in a process and the dask workers it
        starts. The others force one (see :func:`devices.inference_dtype`).
        Networks run prepared for inference
        (:func:`models.folding.prepare_for_inference`: BatchNorm folded,
        conv + ReLU fused on the CPU; a copy, so a module passed in is left as
        it is), in channels-last memory format on the CPU and CUDA (2-4x
        faster convolutions there), with torch's threads capped at the CPUs
        this process may use.

    Examples
    --------
    >>> colorizer = Colorizer("beta-punks")  # doctest: +SKIP
    >>> rgb = colorizer.colorize(gray)  # doctest: +SKIP
    >>> for event in colorizer.run(stack, out=zarr_array):  # doctest: +SKIP
    ...     print(event.done, event.total)
    """

    def __init__(
        self,
        model,
        device="auto",
        tile: int | None = None,
        overlap: int | str = "auto",
        chroma_size: int | str | None = "auto",
        batch_size: int | None = None,
        hints: Mapping[str, Any] | None = None,
        *,
        reference=None,
        correct_with_hints: bool | None = None,
        temporal: bool | float = False,
        percentiles: tuple[float, float] | None = images.DEFAULT_PERCENTILES,
        precision: str = "auto",
    ):
        import torch

        from ..devices import PRECISIONS, inference_dtype, resolve_device
        from ..models.folding import prepare_for_inference

        self.device = resolve_device(device)
        self.meta = None
        #: The training-free method (a colour reference, hint propagation), or None
        self.method = guided_method(model, reference)
        if self.method is not None:
            # guided methods run on the CPU in numpy and torch; the result is the same anywhere
            self.device = torch.device("cpu")
            self.model = None
            if chroma_size == "auto":
                chroma_size = GUIDED_CHROMA_SIZE
        elif isinstance(model, (str, os.PathLike)):
            self.model, self.meta = model_cache.cached_model(model, self.device)
        elif isinstance(model, torch.nn.Module):
            # the same function, faster (BatchNorm folded, fused calls); a copy, so
            # the caller's module keeps its own layers and mode
            self.model = prepare_for_inference(model, self.device)
        else:
            raise ValueError(
                f"model must be a torch.nn.Module, a registered model name, a checkpoint "
                f"path or {GUIDED_METHODS}, got {type(model).__name__}; see "
                "`napari-colorize models`"
            )
        if self.model is not None:
            param = next(self.model.parameters(), None)
            if param is not None and param.device != self.device:
                self.model.to(self.device)
            self.model.eval()

        gpu = self.device.type != "cpu"
        #: (extra, data) of the model's checkpoint when the working size is "auto"
        self._auto_size = None
        if chroma_size == "auto":
            from ..cards import auto_working_size

            extra = dict(getattr(self.meta, "extra", None) or {})
            self._auto_size = (extra, getattr(self.meta, "data", None))
            # the size for images near the model's training size; working_shape decides
            chroma_size = auto_working_size(extra, self._auto_size[1], (1, 1), DEFAULT_CHROMA_SIZE)
        self.chroma_size = (
            check_positive("chroma_size", chroma_size, images.MIN_SIZE) if chroma_size else None
        )
        self.tile = check_positive(
            "tile", tile if tile is not None else (1024 if gpu else 512), 16
        )
        if overlap != "auto" and (
            isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or overlap < 0
        ):
            raise ValueError(f"overlap must be an integer >= 0 or 'auto', got {overlap!r}")
        #: The tiles' overlap as given: pixels, or "auto" (see :meth:`tile_overlap`)
        self.overlap = overlap if overlap == "auto" else int(overlap)
        self.batch_size = check_positive(
            "batch_size", batch_size if batch_size is not None else (16 if gpu else 8)
        )
        if hints is not None and not isinstance(hints, Mapping):
            hints = {"hints": hints}
        self.hints = dict(hints or {})
        takes_hints = self.method is None and network_takes_hints(self.model)
        #: Whether the network itself gets ``hints=`` (a hint-aware model).
        self.model_takes_hints = takes_hints
        if correct_with_hints is None:
            correct_with_hints = not takes_hints and not isinstance(self.method, HintPropagator)
        #: Spreads hints over the prediction as local corrections, or None.
        self.corrector = HintPropagator() if correct_with_hints else None
        #: Blend strength along the scroll axis (0: planes coloured on their own)
        self.temporal = temporal_strength(temporal)
        self.percentiles = percentiles
        # measured (benchmarks/speed.py): 2-4x faster convs on the CPU (oneDNN) and on
        # CUDA; MPS support for it is patchy
        self.channels_last = self.device.type in ("cpu", "cuda")
        if self.channels_last and self.model is not None:
            self.model.to(memory_format=torch.channels_last)
        precision = precision_asked(precision, PRECISIONS)
        self.precision = precision
        # guided methods compute in float32 on the CPU whatever is asked
        self._fixed_dtype = inference_dtype(
            self.device, precision if self.model is not None else "fp32"
        )
        fast_bf16 = (
            precision == "auto"
            and self.device.type == "cpu"
            and self.model is not None
            and cpu_has_fast_bf16()
        )
        # "auto" on a CPU with AMX: the model's recorded change on its quality set
        # decides; without one, large runs check bf16 on their own data first
        recorded = quality_set_change(self.meta) if fast_bf16 else None
        self._check_bf16 = fast_bf16 and recorded is None
        self._recorded_change = None
        self._recorded_reason = ""
        if recorded is not None:
            change, data = recorded
            chosen = change <= MAX_COLOUR_CHANGE
            self._fixed_dtype = torch.bfloat16 if chosen else None
            self._recorded_change = change
            self._recorded_reason = (
                f"bf16 moves this model's colours by {change:.3f} CIEDE2000 on {data}, "
                f"{'within' if chosen else 'more than'} {MAX_COLOUR_CHANGE}"
            )
        #: The autocast dtype of the current (or last) run, None for float32
        self.autocast_dtype = self._fixed_dtype
        #: The precision the current (or last) run's network used: "fp32", "bf16" or "fp16"
        self.precision_used = precision_name(self._fixed_dtype)
        #: The colour change (mean CIEDE2000) "auto" judged bf16 by in the last run: the
        #: model's recorded one on its quality set, or what the check measured (or None)
        self.bf16_change = self._recorded_change
        #: Why "auto" chose :attr:`precision_used` in the last run ("" where nothing was chosen)
        self.precision_reason = self._recorded_reason
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if usable and torch.get_num_threads() > usable:
            torch.set_num_threads(usable)
        self._overlap = None  # "auto" overlap, once measured
        # the out-of-memory fallback lowers these for the rest of this colorizer's life
        self._tile = self.tile
        self._batch = self.batch_size
        #: Pixels per forward pass on the CPU when the batch size was not given
        self._batch_pixels = CPU_BATCH_PIXELS if batch_size is None and not gpu else None
        #: On CUDA without a batch size: passes as large as half the free memory allows
        self._auto_batch = batch_size is None
        self._gpu_pixels = None  # measured on the first CUDA pass
        self._stop = threading.Event()
        self.stopped = False
        self._workers = Workers(torch.get_num_threads())
        self._composer = Composer(torch, self.device, self._workers)

    def _recorded_note(self) -> str:
        """The first message's note on a precision "auto" took from the checkpoint's record."""
        if not self._recorded_reason:
            return ""
        return f"; precision {self.precision_used}: {self._recorded_reason}"

    def close(self) -> None:
        """Stop the worker threads (they also end with the colorizer or the process)."""
        self._workers.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self) -> str:
        return (
            f"Colorizer({type(self.method or self.model).__name__}, device={str(self.device)!r}, "
            f"tile={self._tile}, overlap={self.overlap}, chroma_size={self.chroma_size}, "
            f"batch_size={self._batch})"
        )

    # ------------------------------------------------------------ public

    def request_stop(self) -> None:
        """Ask a running :meth:`run` to stop after the current tile batch or plane."""
        self._stop.set()

    def colorize(self, array, out=None, *, rgb=None, value_range=None) -> Any:
        """Colorize an image or stack.

        Parameters
        ----------
        array : array-like
            2D gray, RGB/RGBA (colour is replaced, its L kept), or an nD stack;
            numpy, dask, zarr, ... (see :func:`images.describe`).
        out : array-like, optional
            Where to write the result, plane by plane: anything of shape
            ``layout.output_shape`` and dtype uint8 that takes slice
            assignment (numpy, ``np.memmap``, zarr, tifffile memmap).
        rgb : bool, optional
            Whether the last axis is colour; guessed as napari does.
        value_range : (float, float), optional
            Input values mapped to black and white (e.g. a layer's contrast
            limits); default :func:`images.intensity_range` of the whole stack.

        Returns
        -------
        numpy.ndarray or the given ``out``
            RGB uint8, ``leading_shape + (H, W, 3)``.

        Raises
        ------
        ValueError
            For any input :mod:`napari_colorize.images` rejects, a wrong ``out``
            or a model breaking the contract.
        """
        return _drain(self.run(array, out, rgb=rgb, value_range=value_range))

    def predict_ab(self, array, out=None, *, rgb=None, value_range=None) -> Any:
        """Predicted ab at full resolution: float32 ``leading_shape + (H, W, 2)``.

        Same parameters as :meth:`colorize`; ``out`` must be float32.
        """
        return _drain(self.run(array, out, output="ab", rgb=rgb, value_range=value_range))

    def predict_lab(self, array, out=None, *, rgb=None, value_range=None) -> Any:
        """The input's L with the predicted ab: float32 ``leading_shape + (H, W, 3)``.

        Same parameters as :meth:`colorize`; ``out`` must be float32.
        """
        return _drain(self.run(array, out, output="lab", rgb=rgb, value_range=value_range))

    def colorize_lightness(self, lightness, out=None, *, output="rgb") -> Any:
        """Colorize images whose CIE L the caller already has: the one prediction path.

        The same steps as :meth:`colorize` (L shrunk to the working size, ab
        predicted there, upsampled onto the full-resolution L and turned into
        RGB with :func:`napari_colorize.color.l_ab_to_rgb`'s gamut policy), but
        ``lightness`` is used as it is, with no intensity mapping: what
        :func:`napari_colorize.evaluation.evaluate` and the benchmarks score is
        what a user sees.

        Parameters
        ----------
        lightness : array-like
            float L in [0, 100], ``(H, W)`` or a stack ``(..., H, W)``.
        out : array-like, optional
            As in :meth:`colorize` (uint8 for ``"rgb"``, float32 otherwise).
        output : {"rgb", "lab", "ab"}
            As in :meth:`run`.

        Returns
        -------
        numpy.ndarray or the given ``out``
        """
        return _drain(self.run(lightness, out, output=output, lightness=True))

    def run(self, array, out=None, *, output="rgb", rgb=None, value_range=None, lightness=False):
        """Colorize step by step: a generator of :class:`ColorizeProgress` events.

        Parameters
        ----------
        array, out, rgb, value_range
            As in :meth:`colorize`.
        output : {"rgb", "lab", "ab"}
            RGB uint8 (``(..., 3)``), or float32 Lab (``(..., 3)``) or ab (``(..., 2)``).
        lightness : bool
            ``array`` already holds CIE L in [0, 100] (see :meth:`colorize_lightness`).

        Yields
        ------
        ColorizeProgress
            After each batch of tiles and each finished plane.

        Returns
        -------
        numpy.ndarray or the given ``out``
            As the ``StopIteration`` value (``result = yield from colorizer.run(...)``).
            After :meth:`request_stop` the planes not reached are left unwritten
            and :attr:`stopped` is True.
        """
        import torch

        self._stop.clear()
        self.stopped = False
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        layout = images.describe(array, rgb=False if lightness else rgb)
        if not all(hasattr(array, name) for name in ("shape", "dtype", "__getitem__")):
            array = np.asarray(array)
        if value_range is None and not lightness:
            value_range = images.intensity_range(array, layout, self.percentiles)
        out = self._prepare_out(out, layout, output)
        hints = self._prepare_hints(layout)
        height, width = layout.spatial_shape
        work = self.working_shape(layout.spatial_shape)
        guided = self.method is not None
        # a guided method takes the whole working plane at once
        tile = max(work) if guided else self._tile
        tiling = self._tiling(work, tile)
        n = layout.n_planes
        state = _RunState(0, n * (len(tiling.tiles) + 1), n, tiling)
        self.autocast_dtype = self._fixed_dtype
        self.precision_used = precision_name(self._fixed_dtype)
        self.bf16_change = self._recorded_change
        self.precision_reason = self._recorded_reason
        state.check_precision = (
            self._check_bf16 and not guided and worth_checking(n, len(tiling.tiles))
        )
        group_size = max(1, min(self._batch, _GROUP_PIXELS // (height * width)))
        # a stack's planes are converted by the reading thread, beside the network
        to_l = (
            _given_lightness
            if lightness
            else Lightness(layout, value_range, self._workers if n == 1 else INLINE)
        )
        sequential = bool(self.temporal) and n > 1
        groups = () if sequential else self._groups(array, layout, to_l, group_size)
        if n > 1 and not sequential:
            groups = Prefetch(groups)
        yield ColorizeProgress(
            0,
            state.total,
            None,
            f"{n} plane(s) of {height}x{width}, working size {work[0]}x{work[1]}, "
            f"{len(tiling.tiles)} tile(s) per plane{self._recorded_note()}",
        )
        try:
            if guided:  # e.g. learning the reference's colours, once per run
                yield ColorizeProgress(0, state.total, None, f"preparing {self.method.name}")
                self.method.prepare(scale=work[0] / height)
            if sequential:  # plane after plane along the scroll axis
                yield from run_sequences(
                    self, array, layout, to_l, out, output, hints, work, state, self.temporal
                )
            for group in groups:
                if self._stop.is_set():
                    break
                l_work, cond = self._working_inputs(group, work, hints)
                hint_maps = cond.get("hints")
                if guided:
                    ab = self._guided_predict(l_work, hint_maps)
                    state.done += len(group)
                    yield ColorizeProgress(state.done, state.total, group[0][0], "colours")
                else:
                    if not self.model_takes_hints:
                        cond = {k: v for k, v in cond.items() if k != "hints"}
                    ab = yield from self._predict(l_work, cond, state, group[0][0])
                if ab is not None and self.corrector is not None and hint_maps is not None:
                    ab = self._correct(l_work, ab, hint_maps)
                del l_work, cond, hint_maps
                if ab is None:
                    break
                for b, (index, lightness) in enumerate(group):
                    if self._stop.is_set():
                        break
                    plane_ab = ab[b]
                    if not hints and float(lightness.min()) == float(lightness.max()):
                        # a constant plane has nothing to tell colours by: it stays gray
                        plane_ab = torch.zeros_like(plane_ab)
                    self._write(lightness, plane_ab, out, index, output)
                    state.done += 1
                    state.planes_left -= 1
                    yield ColorizeProgress(
                        state.done, state.total, index, f"plane {n - state.planes_left}/{n}"
                    )
                del ab, group
        finally:
            if isinstance(groups, Prefetch):
                groups.close()
        if state.planes_left:  # only a stop request ends the loop early
            self.stopped = True
            yield ColorizeProgress(state.done, state.total, None, "stopped")
        self._stop.clear()
        return out

    def working_shape(self, spatial_shape: tuple[int, int]) -> tuple[int, int]:
        """The ``(h, w)`` the network sees for a plane of ``spatial_shape``.

        With ``chroma_size="auto"`` the working size depends on the plane's size
        (see :func:`napari_colorize.cards.auto_working_size`).
        """
        height, width = spatial_shape
        longest = max(height, width)
        size = self.chroma_size
        if self._auto_size is not None:
            from ..cards import auto_working_size

            size = auto_working_size(*self._auto_size, (height, width), DEFAULT_CHROMA_SIZE)
        if not size or longest <= size:
            return height, width
        scale = size / longest
        return max(1, round(height * scale)), max(1, round(width * scale))

    # ------------------------------------------------------------ steps

    def _prepare_out(self, out, layout, output):
        channels = 2 if output == "ab" else 3
        shape = layout.leading_shape + layout.spatial_shape + (channels,)
        dtype = np.dtype(np.uint8 if output == "rgb" else np.float32)
        if out is None:
            return np.empty(shape, dtype=dtype)
        if tuple(getattr(out, "shape", ())) != shape:
            raise ValueError(
                f"out has shape {tuple(getattr(out, 'shape', ()))} but the result has shape "
                f"{shape}; allocate it with that shape"
            )
        if np.dtype(out.dtype) != dtype:
            raise ValueError(f"out has dtype {out.dtype} but {output!r} results are {dtype}")
        return out

    def _prepare_hints(self, layout):
        spatial = layout.spatial_shape
        checked = {}
        for name, value in self.hints.items():
            value = hint_maps(value)
            shape = tuple(getattr(value, "shape", np.shape(value)))
            if shape[-3:-1] != spatial or shape[:-3] not in ((), layout.leading_shape):
                raise ValueError(
                    f"hint {name!r} has shape {shape}; expected (H, W, C) = {(*spatial, 'C')} "
                    f"or {layout.leading_shape + spatial + ('C',)}"
                )
            checked[name] = (value, len(shape) > 3)
        return checked

    def _groups(self, array, layout, to_l, group_size):
        group = []
        for index, plane in images.iter_planes(array, layout):
            group.append((index, to_l(plane, index)))
            del plane
            if len(group) == group_size:
                yield group
                group = []
        if group:
            yield group

    def _guided_predict(self, l_work, hint_maps):
        """ab (B, 2, h, w) in Lab units from the guided method, plane by plane."""
        import torch

        lightness = l_work[:, 0].cpu().numpy().copy()  # the method's own
        planes = []
        for b in range(lightness.shape[0]):
            hints = None if hint_maps is None else hint_maps[b].permute(1, 2, 0).cpu().numpy()
            ab = self.method.predict_ab(lightness[b], hints)
            planes.append(torch.from_numpy(np.ascontiguousarray(ab.transpose(2, 0, 1))))
        return torch.stack(planes).to(self.device)

    def _correct(self, l_work, ab, hint_maps):
        """``ab`` (B, 2, h, w) corrected near the hints by :attr:`corrector`."""
        import torch

        lightness = l_work[:, 0].float().cpu().numpy().copy()
        maps = hint_maps.permute(0, 2, 3, 1).float().cpu().numpy()
        prior = ab.permute(0, 2, 3, 1).float().cpu().numpy()
        fixed = [self.corrector.correct(lightness[b], prior[b], maps[b]) for b in range(len(maps))]
        out = torch.from_numpy(np.ascontiguousarray(np.stack(fixed).transpose(0, 3, 1, 2)))
        return out.to(ab.device)

    def _write(self, lightness, ab, out, index, output):
        import torch

        composer = self._composer
        height, width = lightness.shape
        with torch.inference_mode():
            abw = composer.widen(ab, width)
        rows = max(1, _STRIP_PIXELS // width)
        # numpy outputs (memmaps too) take the result in place; others (zarr, ...)
        # get one assignment per strip from this thread
        direct = isinstance(out, np.ndarray) and min(out.strides) >= 0
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            where = (*index, slice(r0, r1))
            target = out[where] if direct else np.empty((r1 - r0, *out.shape[-2:]), out.dtype)
            composer.fill(lightness, abw, r0, r1, target, output)
            if not direct:
                out[where] = target


def _given_lightness(plane, index=None) -> np.ndarray:
    """A plane that already holds L in [0, 100], as float32 (see ``colorize_lightness``)."""
    plane = np.asarray(plane)
    if plane.dtype.kind != "f":
        raise ValueError(
            f"lightness must be float L in [0, 100], got dtype {plane.dtype}; convert an "
            "image with napari_colorize.color.rgb_to_lab(rgb)[..., 0] or use colorize()"
        )
    return np.ascontiguousarray(plane, dtype=np.float32)


def _drain(generator):
    """Run a generator to its end and return its return value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def colorize(
    array, model=None, *, reference=None, out=None, rgb=None, value_range=None, **options
):
    """Colorize an image or stack with a model, a colour reference or hints.

    Parameters
    ----------
    array : array-like
        2D gray, RGB/RGBA or an nD stack (numpy, dask, zarr, ...).
    model : str, path-like or torch.nn.Module, optional
        A registered name (``napari-colorize models``), a checkpoint file, a
        module, or a training-free method: ``"propagate"`` (spread ``hints``
        along lightness) or ``"reference"`` (with ``reference=``). Loaded
        models are cached. Default: chosen for the image by
        :func:`napari_colorize.choice.default_method` (a reference when given,
        the punks models for punks-sized images, a downloaded photo model,
        hint propagation with hints; otherwise a :class:`~.choice.NoMethodError`
        naming the options).
    reference : array-like or list of array-like, optional
        Colour image(s) of the same kind of scene or tissue (RGB uint8, uint16
        or float in [0, 1]); colours are learned from them in seconds, once for
        a whole stack.
    out, rgb, value_range
        See :meth:`Colorizer.colorize`.
    **options
        :class:`Colorizer` options: ``device``, ``tile``, ``overlap``,
        ``chroma_size``, ``batch_size``, ``hints`` (hint maps or a
        :class:`~napari_colorize.hints.HintSource`: points, shapes, labels), ...

    Returns
    -------
    numpy.ndarray
        RGB uint8 of shape ``leading_shape + (H, W, 3)`` (or the given ``out``).
    """
    if model is None:
        from ..choice import default_method

        layout = images.describe(array, rgb=rgb)
        model = default_method(
            layout.spatial_shape,
            hints=options.get("hints") is not None,
            reference=reference is not None,
        )
    colorizer = Colorizer(model, reference=reference, **options)
    return colorizer.colorize(array, out, rgb=rgb, value_range=value_range)
