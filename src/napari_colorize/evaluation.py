"""Evaluate a colorization model (or a baseline) on CryptoPunks or a folder of images.

Every image is turned into its lightness L, the model (or baseline) predicts
ab from L alone, and the prediction is recombined with the image's *true* L
before it is scored against the original with :mod:`napari_colorize.metrics`.

:func:`run_evaluation` is a generator of :class:`EvaluationProgress` events
ending with one :class:`EvaluationDone`; :func:`evaluate` drives it and returns
the report.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .color import lab_to_rgb, rgb_to_lab

__all__ = [
    "BASELINES",
    "IMAGE_SUFFIXES",
    "EvaluationDone",
    "EvaluationProgress",
    "evaluate",
    "format_report",
    "run_evaluation",
]

#: ``gray``: ab = 0; ``mean``: the training data's mean ab (per pixel for punks).
BASELINES = ("gray", "mean")
#: Files a data folder is searched for (recursively, case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_DEFAULT_CHROMA_SIZE = 256


@dataclass(frozen=True)
class EvaluationProgress:
    """``done`` of ``total`` images have been predicted and scored."""

    done: int
    total: int


@dataclass(frozen=True)
class EvaluationDone:
    """The last event: the finished report (see :func:`evaluate`)."""

    report: dict


# -------------------------------------------------------------------- data


@dataclass
class _Batch:
    """Truth images of one shape: ``rgb`` ``(B, H, W, 3)`` uint8 or float, ``alpha`` or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None


class _PunksSource:
    def __init__(self, split: str):
        from .data.punks import load_punks

        self.name = f"punks:{split}"
        self.punks = load_punks(split)
        self.n_images = int(self.punks.rgb.shape[0])

    def batches(self, batch_size: int) -> Iterator[list[_Batch]]:
        rgb, alpha = self.punks.rgb, self.punks.alpha
        for start in range(0, self.n_images, batch_size):
            end = start + batch_size
            yield [_Batch(rgb[start:end], alpha[start:end])]

    def mean_ab(self) -> np.ndarray:
        """Per-pixel mean ab of the train split, ``(24, 24, 2)``."""
        from .data.punks import load_punks

        train = load_punks("train").rgb
        total = np.zeros((*train.shape[1:3], 2), dtype=np.float64)
        for start in range(0, train.shape[0], 1024):
            total += rgb_to_lab(train[start : start + 1024])[..., 1:].sum(axis=0, dtype=np.float64)
        return total / train.shape[0]

    def groups(self):
        """``(membership (N, G), names)`` of the punk types, or None."""
        from .data.punks import PUNK_TYPES

        names = [str(n) for n in self.punks.label_names]
        lower = [n.lower() for n in names]
        cols = [lower.index(t) for t in PUNK_TYPES if t in lower]
        if not cols:
            return None
        return np.asarray(self.punks.labels)[:, cols].astype(bool), [names[c] for c in cols]


def _read_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 or float32 RGB in [0, 1] (alpha dropped)."""
    from skimage.io import imread

    try:
        img = np.asarray(imread(path))
    except Exception as exc:  # any decoder error means the same to the user
        raise ValueError(f"cannot read image {path}: {exc}; remove it from the folder") from exc
    if img.ndim == 3 and img.shape[-1] in (2, 4):  # gray + alpha, RGBA
        img = img[..., :-1]
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(
            f"image {path} has shape {img.shape}; expected a 2D gray, RGB or RGBA image"
        )
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img / 65535.0).astype(np.float32)
    if img.dtype == bool:
        return img.astype(np.uint8) * 255
    if img.dtype.kind == "f":
        if not np.all(np.isfinite(img)):
            raise ValueError(f"image {path} holds NaN or infinite values")
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"image {path} has dtype {img.dtype}; use 8- or 16-bit images")


class _FolderSource:
    def __init__(self, folder: Path):
        self.name = str(folder)
        if folder.is_file():
            self.paths = [folder]
        else:
            self.paths = sorted(
                p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        if not self.paths:
            raise ValueError(
                f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {folder}; "
                "point --data at a folder of color images or use punks:test"
            )
        self.n_images = len(self.paths)

    def batches(self, batch_size: int) -> Iterator[list[_Batch]]:
        # images are read chunk by chunk; within a chunk, images of one shape share a batch
        for start in range(0, self.n_images, batch_size):
            by_shape: dict[tuple, list[np.ndarray]] = {}
            for path in self.paths[start : start + batch_size]:
                img = _read_rgb(path)
                by_shape.setdefault((img.shape, img.dtype.str), []).append(img)
            yield [_Batch(np.stack(imgs)) for imgs in by_shape.values()]

    def mean_ab(self) -> np.ndarray:
        """Global mean ab, ``(2,)``, over the folder's own images (it has no train split)."""
        total, count = np.zeros(2), 0
        for batches in self.batches(64):
            for b in batches:
                ab = rgb_to_lab(b.rgb)[..., 1:]
                total += ab.reshape(-1, 2).sum(axis=0, dtype=np.float64)
                count += ab.shape[0] * ab.shape[1] * ab.shape[2]
        return total / count

    def groups(self):
        return None


def _open_data(data):
    if isinstance(data, str) and data.lower().startswith("punks"):
        _, _, split = data.partition(":")
        split = split or "test"
        if split not in ("train", "test"):
            raise ValueError(
                f"unknown punks split {split!r} in {data!r}; use punks:test or punks:train"
            )
        return _PunksSource(split)
    text = str(data)
    if text.startswith("folder:"):
        text = text[len("folder:") :]
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"data {data!r} is neither 'punks:test', 'punks:train' "
            "nor an existing folder of images"
        )
    return _FolderSource(path)


# -------------------------------------------------------------- predictors


def _recombine(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] from the true L ``(B, H, W)`` and predicted ab ``(B, H, W, 2)``."""
    lab = np.concatenate([lightness[..., None], ab], axis=-1, dtype=np.float64)
    return lab_to_rgb(lab)


class _ModelPredictor:
    def __init__(self, model, device, chroma_size: int):
        import torch

        self.model = model
        self.device = device
        self.chroma_size = int(chroma_size)
        self.torch = torch

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        """ab ``(B, H, W, 2)`` predicted from L ``(B, H, W)``."""
        import torch.nn.functional as F

        from .color import l_to_net, net_to_ab

        torch = self.torch
        _, h, w = lightness.shape
        x = torch.from_numpy(np.ascontiguousarray(l_to_net(lightness), dtype=np.float32))
        x = x[:, None].to(self.device)
        if max(h, w) > self.chroma_size:
            # large images: predict chroma with the longest side at the model's working
            # size (as inference.Colorizer does) and upsample it; the true L keeps the detail
            scale = self.chroma_size / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        was_training = self.model.training
        self.model.eval()  # for this call only: a module passed in is left as it was
        try:
            out = self.model(x)
        finally:
            self.model.train(was_training)
        if tuple(out.shape[-2:]) != (h, w):
            out = F.interpolate(out.float(), size=(h, w), mode="bilinear", align_corners=False)
        return net_to_ab(out.float()).permute(0, 2, 3, 1).cpu().numpy()


class _ConstantPredictor:
    def __init__(self, ab: np.ndarray):
        self.ab = np.asarray(ab, dtype=np.float32)  # (2,) or (H, W, 2)

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        b, h, w = lightness.shape
        if self.ab.ndim == 3 and self.ab.shape[:2] != (h, w):
            raise ValueError(
                f"the per-pixel mean ab is {self.ab.shape[:2]} but an image is {(h, w)}"
            )
        return np.broadcast_to(self.ab, (b, h, w, 2))


def _load_model(model, device, chroma_size):
    """``(module, name, chroma_size)`` from a module or a registered name/checkpoint path."""
    import torch

    if isinstance(model, torch.nn.Module):
        return model.to(device), type(model).__name__, chroma_size or _DEFAULT_CHROMA_SIZE
    from .registry import load_model

    module, meta = load_model(model, device=device)
    extra = getattr(meta, "extra", None) or {}
    size = chroma_size or extra.get("chroma_size") or _DEFAULT_CHROMA_SIZE
    return module.to(device), str(model), int(size)


# --------------------------------------------------------------- evaluation


def run_evaluation(
    model=None,
    data="punks:test",
    baseline: str | None = None,
    batch_size: int = 256,
    device="auto",
    chroma_size: int | None = None,
) -> Iterator[EvaluationProgress | EvaluationDone]:
    """Evaluate step by step: an iterator of progress events, then the report.

    Parameters are those of :func:`evaluate`. Arguments are checked, the data
    opened and the model loaded when this is called, so bad input raises here;
    the images are predicted and scored as the iterator is consumed.

    Returns
    -------
    iterator
        :class:`EvaluationProgress` after each batch of images, then one
        :class:`EvaluationDone` with the report.
    """
    if (model is None) == (baseline is None):
        raise ValueError(
            "pass either a model (a name, a checkpoint path or an nn.Module) "
            f"or a baseline ({' or '.join(repr(b) for b in BASELINES)}), not "
            + ("both" if model is not None else "neither")
        )
    if baseline is not None and baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; use one of {', '.join(BASELINES)}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch_size = int(batch_size)

    source = _open_data(data)
    if model is not None:
        import torch

        from .devices import resolve_device

        dev = resolve_device(device)
        module, model_name, size = _load_model(model, dev, chroma_size)
        predict = _ModelPredictor(module, dev, size)
        grad_off = torch.inference_mode
    else:
        model_name = None
        ab = source.mean_ab() if baseline == "mean" else np.zeros(2)
        predict = _ConstantPredictor(ab)
        grad_off = contextlib.nullcontext

    return _evaluation_events(source, predict, grad_off, model_name, baseline, batch_size)


def _evaluation_events(source, predict, grad_off, model_name, baseline, batch_size):
    parts, done = [], 0
    for chunk in source.batches(batch_size):
        for batch in chunk:
            lightness = rgb_to_lab(batch.rgb)[..., 0]
            with grad_off():
                ab = predict(lightness)
            rgb_pred = _recombine(lightness, ab)
            parts.append(metrics.score_images(rgb_pred, batch.rgb, batch.alpha))
            done += batch.rgb.shape[0]
        yield EvaluationProgress(done, source.n_images)

    scores = metrics.ImageScores.concat(parts)
    result: dict = scores.summary()
    result["n_images"] = len(scores)
    result["data"] = source.name
    result["model"] = model_name
    result["baseline"] = baseline
    groups = source.groups()
    if groups is not None:
        result["by_type"] = metrics.breakdown(scores, *groups)
    yield EvaluationDone(result)


def evaluate(
    model=None,
    data="punks:test",
    baseline: str | None = None,
    batch_size: int = 256,
    device="auto",
    chroma_size: int | None = None,
    progress: Callable[[EvaluationProgress], None] | None = None,
) -> dict:
    """Score a model's (or a baseline's) colorizations of a data set.

    L is taken from each true image, the model predicts ab from it, and the
    prediction recombined with the true L is compared with the true image.

    Parameters
    ----------
    model : str, path-like or torch.nn.Module, optional
        A registered model name, a checkpoint file or a module following the
        model contract (``l_to_net(L)`` in, ``ab_to_net(ab)`` out).
    data : str or path-like
        ``"punks:test"`` / ``"punks:train"``, or a folder of images (searched
        recursively; ``"folder:PATH"`` also works). Folder images may have any
        size: those whose longest side exceeds the model's working size
        (``chroma_size``) are shrunk to it (aspect kept), and the predicted ab
        is upsampled bilinearly to full resolution; smaller ones are predicted
        at full size. An alpha channel in a file is dropped.
    baseline : {"gray", "mean"}, optional
        Instead of a model: ``"gray"`` predicts ab = 0; ``"mean"`` predicts
        the mean ab of the training data, per pixel for punks (over
        punks:train), and globally for a folder (over the folder itself, which
        has no separate train split). Exactly one of ``model`` and
        ``baseline`` must be given.
    batch_size : int
        Images per model call.
    device : str or torch.device
        ``"auto"`` picks CUDA, then MPS, then CPU.
    chroma_size : int, optional
        Longest side the model sees; default: the checkpoint's
        ``extra["chroma_size"]``, else 256.
    progress : callable, optional
        Called with an :class:`EvaluationProgress` after each batch.

    Returns
    -------
    dict
        The seven keys of :data:`napari_colorize.metrics.REPORT_KEYS` (for
        punks ``ciede2000_fg`` is over pixels with alpha > 0; for folders it
        equals ``ciede2000``), plus ``n_images``, ``data``, ``model``,
        ``baseline`` and, for punks, ``by_type``: the same metrics (and
        ``n_images``) for each punk type.
    """
    for event in run_evaluation(model, data, baseline, batch_size, device, chroma_size):
        if isinstance(event, EvaluationDone):
            return event.report
        if progress is not None:
            progress(event)
    raise RuntimeError("evaluation ended without a report")  # pragma: no cover


def format_report(report: dict) -> str:
    """The metrics of a report as a two-column text table (NaN shown as ``-``)."""
    rows = [("metric", "value")]
    for key in metrics.REPORT_KEYS:
        value = report.get(key, math.nan)
        rows.append((key, "-" if value is None or math.isnan(value) else f"{value:.4f}"))
    if "n_images" in report:
        rows.append(("n_images", str(report["n_images"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
