"""Use a bioimage.io model package as a napari-colorize model.

Any bioimage.io model with TorchScript weights, one gray input and an RGB
output works: the packages napari-colorize exports, and image-to-image models
of others. The package's own pre- and postprocessing and axis order are
applied around its graph (:class:`PackageNetwork`), and
:class:`~.graph.RGBModelAsColorizer` turns the RGB it returns into ab, so the
:class:`~napari_colorize.inference.Colorizer` tiles, composes and keeps the
input's lightness as with its own models.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from .detect import DESCRIPTION_NAMES, require_spec
from .graph import OwnGraphAsColorizer, RGBModelAsColorizer, quiet_jit

__all__ = ["PackageNetwork", "load_package"]

_SUPPORTED = (
    "ensure_dtype, scale_linear, clip, scale_range, zero_mean_unit_variance, "
    "fixed_zero_mean_unit_variance, sigmoid, binarize"
)


def _fail(source, what: str) -> CheckpointError:
    return CheckpointError(f"{source}: {what}")


class PackageNetwork(nn.Module):
    """A package's graph as gray ``(N, 1, H, W)`` in [0, 1] -> RGB ``(N, 3, H, W)`` in [0, 1].

    Parameters
    ----------
    graph : torch.jit.ScriptModule
        The package's TorchScript weights.
    descr : bioimageio.spec.model.v0_5.ModelDescr
        Its description (inputs[0] gray, outputs[0] RGB).
    source : str
        For messages.
    """

    def __init__(self, graph, descr, source: str):
        super().__init__()
        self.graph = graph
        self.source = source
        inp, out = descr.inputs[0], descr.outputs[0]
        self.in_axes = [self._axis(a, "input", source) for a in inp.axes]
        self.out_axes = [self._axis(a, "output", source) for a in out.axes]
        self.in_names, self.out_names = _names(inp.axes), _names(out.axes)
        # each canonical axis name (batch, channel, y, x) -> the package's axis id
        self.in_ids = {n: str(a.id) for n, a in zip(self.in_names, inp.axes)}
        self.out_ids = {n: str(a.id) for n, a in zip(self.out_names, out.axes)}
        types = [t for t, _ in self.in_axes]
        if types.count("space") != 2 or any(t not in ("batch", "channel", "space") for t in types):
            raise _fail(source, f"its input has axes {types}; only 2D gray images are supported")
        if dict(self.in_axes).get("channel", 1) != 1:
            raise _fail(source, "its input has more than one channel; it needs a gray input")
        if dict(self.out_axes).get("channel") != 3:
            raise _fail(source, "its output has no channel axis of 3 (RGB); it is not a colorizer")
        self.pre = [self._op(p, source) for p in inp.preprocessing]
        self.post = [self._op(p, source) for p in out.postprocessing]
        sizes = {n: a.size for n, a in zip(self.in_names, inp.axes)}
        self.sizes = [sizes["y"], sizes["x"]]
        # gray in [0, 1] is fed on the input's scale (e.g. 0-255 for uint8 data), and the
        # output read on its own
        self.in_max = _full_scale(getattr(inp, "data", None))
        self.out_max = _full_scale(getattr(out, "data", None))

    @staticmethod
    def _axis(axis, where: str, source):
        size = getattr(axis, "size", None)
        if axis.type == "channel":
            return "channel", len(axis.channel_names)
        if axis.type in ("batch", "space"):
            return axis.type, size
        raise _fail(source, f"its {where} has a {axis.type!r} axis; only 2D images are supported")

    @staticmethod
    def _op(proc, source):
        name = proc.id
        kwargs = getattr(proc, "kwargs", None)
        known = _SUPPORTED.split(", ")
        if name not in known:
            raise _fail(source, f"its processing step {name!r} is not supported ({_SUPPORTED})")
        if name == "clip" and (
            getattr(kwargs, "min_percentile", None) is not None
            or getattr(kwargs, "max_percentile", None) is not None
        ):
            raise _fail(source, "clipping at percentiles is not supported")
        if getattr(kwargs, "reference_tensor", None) is not None:
            raise _fail(source, f"{name} with a reference tensor is not supported")
        return name, kwargs

    @staticmethod
    def _dims(kwargs, ids) -> list[int]:
        """The dims of (N, C, H, W) a statistic reduces over; never the batch.

        The engine's batches are tiles and planes put together for speed, so
        statistics are per sample whatever the package says about its batch axis.
        """
        axes = getattr(kwargs, "axes", None)
        if axes is None:
            return [1, 2, 3]
        wanted = {str(a) for a in axes}
        names = ("batch", "channel", "y", "x")
        return [i for i in (1, 2, 3) if ids.get(names[i]) in wanted] or [1, 2, 3]

    def _process(self, ops, x, ids):
        # x is (N, C, H, W); ids maps batch, channel, y, x to the package's axis ids
        for name, kw in ops:
            if name == "ensure_dtype":
                continue
            if name == "scale_linear":
                gain = torch.as_tensor(kw.gain, dtype=x.dtype, device=x.device)
                offset = torch.as_tensor(kw.offset, dtype=x.dtype, device=x.device)
                shape = (1, -1, 1, 1) if gain.ndim or offset.ndim else ()
                x = x * gain.reshape(shape) + offset.reshape(shape)
            elif name == "clip":
                x = x.clamp(kw.min, kw.max)
            elif name == "sigmoid":
                x = torch.sigmoid(x)
            elif name == "binarize":
                t = torch.as_tensor(kw.threshold, dtype=x.dtype, device=x.device)
                x = (x > t.reshape((1, -1, 1, 1) if t.ndim else ())).to(x.dtype)
            elif name == "fixed_zero_mean_unit_variance":
                mean = torch.as_tensor(kw.mean, dtype=x.dtype, device=x.device)
                std = torch.as_tensor(kw.std, dtype=x.dtype, device=x.device)
                shape = (1, -1, 1, 1) if mean.ndim else ()
                x = (x - mean.reshape(shape)) / std.reshape(shape)
            elif name == "zero_mean_unit_variance":
                dims = self._dims(kw, ids)
                mean = x.mean(dim=dims, keepdim=True)
                std = x.std(dim=dims, keepdim=True, unbiased=False)
                x = (x - mean) / (std + kw.eps)
            elif name == "scale_range":
                dims = self._dims(kw, ids)
                keep = [i for i in range(4) if i not in dims]
                flat = x.permute(*keep, *dims).reshape(*[x.shape[i] for i in keep], -1)
                q = torch.tensor(
                    [kw.min_percentile / 100.0, kw.max_percentile / 100.0], dtype=x.dtype
                ).to(x.device)
                lo_hi = torch.quantile(flat, q, dim=-1)  # (2, *keep)
                shape = [x.shape[i] if i in keep else 1 for i in range(4)]
                lo, hi = lo_hi[0].reshape(shape), lo_hi[1].reshape(shape)
                x = (x - lo) / (hi - lo + kw.eps)
        return x

    def _valid(self, n: int, size) -> int:
        if isinstance(size, int):
            if n > size:
                raise _fail(
                    self.source,
                    f"the model takes {size} px only; use chroma_size <= {size} or tile={size}",
                )
            return size
        if size is None:
            return n
        lo, step = int(getattr(size, "min", 1)), int(getattr(size, "step", 0) or 0)
        if n <= lo or step == 0:
            return max(n, lo)
        return lo + math.ceil((n - lo) / step) * step

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        _, _, h, w = gray.shape
        x = self._process(self.pre, gray.float() * self.in_max, self.in_ids)
        vh, vw = self._valid(h, self.sizes[0]), self._valid(w, self.sizes[1])
        if (vh, vw) != (h, w):
            x = F.pad(x, [0, vw - w, 0, vh - h], mode="replicate")
        names = ["batch", "channel", "y", "x"]
        if "channel" not in self.in_names:
            x, names = x[:, 0], ["batch", "y", "x"]
        samples = [x]
        if "batch" not in self.in_names:
            samples, names = list(x), names[1:]
        perm = [names.index(n) for n in self.in_names]
        outputs = []
        for sample in samples:
            y = self.graph(sample.permute(*perm).contiguous())
            if isinstance(y, (list, tuple)):
                y = y[0]
            out_names = list(self.out_names)
            if "batch" not in out_names:
                y, out_names = y.unsqueeze(0), ["batch", *out_names]
            order = [out_names.index(n) for n in ("batch", "channel", "y", "x")]
            outputs.append(y.permute(*order))
        y = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        y = self._process(self.post, y.float(), self.out_ids) / self.out_max
        if tuple(y.shape[-2:]) != (vh, vw):
            y = F.interpolate(y, size=(vh, vw), mode="bilinear", align_corners=False)
        return y[:, :, :h, :w].clamp(0.0, 1.0)


def _full_scale(data) -> float:
    """The value white has in a tensor described by ``data`` (1 for [0, 1] floats)."""
    dtype = str(getattr(data, "type", "float32"))
    value_range = getattr(data, "range", None) or (None, None)
    if dtype.startswith(("uint", "int")):
        top = value_range[1] or {"uint8": 255, "uint16": 65535}.get(dtype, 1)
        return float(top)
    if value_range[1] is not None and value_range[1] > 1.5:
        return float(value_range[1])
    return 1.0


def _names(axes) -> list[str]:
    """``batch``, ``channel``, ``y``, ``x`` for each axis (space axes by id, else in order)."""
    ids = [str(a.id) for a in axes if a.type == "space"]
    spatial = ids if sorted(ids) == ["x", "y"] else ["y", "x"]
    space = iter(spatial)
    return [a.type if a.type != "space" else next(space) for a in axes]


def _meta(descr, source):
    from ..checkpoint import CheckpointMeta

    ours = {}
    extra_config = getattr(descr.config, "model_extra", None) or {}
    if isinstance(extra_config.get("napari-colorize"), dict):
        ours = extra_config["napari-colorize"]
    data = ours.get("data")
    if data is None and descr.training_data is not None:
        data = getattr(descr.training_data, "description", None) or str(descr.training_data)
    return CheckpointMeta(
        arch="bioimageio",
        config={"package": str(source), "name": descr.name, "arch": ours.get("arch")},
        data=data,
        metrics=dict(ours.get("metrics") or {}),
        extra=dict(ours.get("extra") or {}),
        version=ours.get("version"),
    )


def load_package(path, device="cpu"):
    """Load a bioimage.io package as a model-contract colorizer.

    Parameters
    ----------
    path : str or path-like
        The package's ``.zip``, its ``rdf.yaml``/``bioimageio.yaml``, or the folder holding it.
    device : str or torch.device

    Returns
    -------
    model : torch.nn.Module
        ``forward(l_net (N,1,H,W)) -> ab / AB_SCALE``, in eval mode, on ``device``.
    meta : CheckpointMeta
        ``arch="bioimageio"``; a napari-colorize package's own data, metrics and
        working size (``extra``) come back.

    Raises
    ------
    FileNotFoundError, CheckpointError
        Missing, not a valid package, no TorchScript weights, or not gray -> RGB.
    """
    from ..devices import resolve_device

    spec = require_spec()
    source = Path(os.fspath(path)).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"no bioimage.io package at {source}")
    if source.is_dir():
        source = next(source / n for n in DESCRIPTION_NAMES if (source / n).is_file())
    try:
        descr = spec.load_description(source, perform_io_checks=False, format_version="latest")
    except Exception as exc:  # zip, yaml and pydantic errors alike
        raise _fail(source, f"not a readable bioimage.io package ({exc})") from None
    if isinstance(descr, spec.InvalidDescr) or getattr(descr, "type", None) != "model":
        summary = getattr(descr, "validation_summary", None)
        errors = [e.msg for d in getattr(summary, "details", []) for e in d.errors][:3]
        raise _fail(source, f"not a valid bioimage.io model ({'; '.join(errors) or descr})")
    weights = getattr(descr.weights, "torchscript", None)
    if weights is None:
        raise _fail(
            source, "it has no TorchScript weights; napari-colorize runs TorchScript packages only"
        )
    if len(descr.inputs) != 1 or len(descr.outputs) < 1:
        raise _fail(source, "it must take one input image (gray) and return an RGB image")
    device = resolve_device(device)
    try:
        with quiet_jit():
            graph = torch.jit.load(io.BytesIO(weights.get_reader().read()), map_location=device)
    except Exception as exc:
        raise _fail(source, f"its TorchScript weights cannot be loaded ({exc})") from None
    meta = _meta(descr, source)
    if meta.version is not None and hasattr(graph, "predict_ab"):
        # napari-colorize's own graph: its ab directly, before the gamut step
        model = OwnGraphAsColorizer(graph)
    else:
        model = RGBModelAsColorizer(PackageNetwork(graph, descr, str(source)))
    return model.to(device).eval(), meta
