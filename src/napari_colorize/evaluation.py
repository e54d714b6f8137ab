"""Evaluate a colorization model (or a baseline) on CryptoPunks or a folder of images.

Every image is turned into its lightness L, the model (or baseline) predicts
ab from L alone, and the prediction is recombined with the image's *true* L
before it is scored against the original with :mod:`napari_colorize.metrics`.
Models go through the Colorizer's own prediction path
(:meth:`~napari_colorize.inference.Colorizer.colorize_lightness`: the working
size, the model contract, the gamut policy of :func:`~napari_colorize.color.l_ab_to_rgb`
and the rounding to uint8), so the scores are computed on what a user sees.
:func:`evaluate_hints` does the same for a hint-aware model given hints sampled
from the truth.

:func:`run_evaluation` is a generator of :class:`EvaluationProgress` events
ending with one :class:`EvaluationDone`; :func:`evaluate` drives it and returns
the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .color import l_ab_to_rgb, rgb_to_lab
from .image_files import READ_SUFFIXES, list_images, read_rgb

__all__ = [
    "BASELINES",
    "IMAGE_SUFFIXES",
    "EvaluationDone",
    "EvaluationProgress",
    "evaluate",
    "evaluate_hints",
    "format_report",
    "precision_change",
    "run_evaluation",
]

#: ``gray``: ab = 0; ``mean``: the training data's mean ab (per pixel for punks).
BASELINES = ("gray", "mean")
#: Files a data folder is searched for (recursively, case-insensitive).
IMAGE_SUFFIXES = READ_SUFFIXES


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


class _FolderSource:
    def __init__(self, folder: Path):
        self.name = str(folder)
        self.paths = list_images(folder, recursive=True, extensions=IMAGE_SUFFIXES)
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
                img = read_rgb(path, gray=True)
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
    """The images ``data`` names (see :func:`~napari_colorize.data.spec.parse_data_spec`)."""
    from .data.spec import parse_data_spec

    spec = parse_data_spec(data, default_split="test")
    return _PunksSource(spec.split) if spec.kind == "punks" else _FolderSource(spec.path)


# -------------------------------------------------------------- predictors


class _ColorizerPredictor:
    """RGB uint8 of the true L ``(B, H, W)`` through the Colorizer's prediction path."""

    def __init__(self, model, device, chroma_size, batch_size: int):
        import torch

        from .devices import resolve_device
        from .inference import Colorizer

        self.module = model if isinstance(model, torch.nn.Module) else None
        # a module passed in is left in the mode it came in
        self.was_training = self.module is not None and self.module.training
        self.name = type(model).__name__ if self.module is not None else str(model)
        # scores on the CPU are float32 on every CPU: "auto" would take bf16 on some
        device = resolve_device(device)
        self.colorizer = Colorizer(
            model, device=device, chroma_size=chroma_size or "auto", batch_size=batch_size,
            precision="fp32" if device.type == "cpu" else "auto",
        )  # fmt: skip

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        return self.colorizer.colorize_lightness(lightness)

    def close(self) -> None:
        self.colorizer.close()
        if self.was_training:
            self.module.train()


class _ConstantPredictor:
    name = None

    def __init__(self, ab: np.ndarray):
        self.ab = np.asarray(ab, dtype=np.float32)  # (2,) or (H, W, 2)

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        b, h, w = lightness.shape
        if self.ab.ndim == 3 and self.ab.shape[:2] != (h, w):
            raise ValueError(
                f"the per-pixel mean ab is {self.ab.shape[:2]} but an image is {(h, w)}"
            )
        return l_ab_to_rgb(lightness, np.broadcast_to(self.ab, (b, h, w, 2)))

    def close(self) -> None:
        pass


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
        predict = _ColorizerPredictor(model, device, chroma_size, batch_size)
    else:
        ab = source.mean_ab() if baseline == "mean" else np.zeros(2)
        predict = _ConstantPredictor(ab)

    return _evaluation_events(source, predict, baseline, batch_size)


def _evaluation_events(source, predict, baseline, batch_size):
    parts, done = [], 0
    try:
        for chunk in source.batches(batch_size):
            for batch in chunk:
                lightness = rgb_to_lab(batch.rgb)[..., 0]
                rgb_pred = predict(lightness)
                parts.append(metrics.score_images(rgb_pred, batch.rgb, batch.alpha))
                done += batch.rgb.shape[0]
            yield EvaluationProgress(done, source.n_images)
    finally:
        predict.close()
    model_name = predict.name

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
    prediction recombined with the true L is compared with the true image: the
    RGB is what :meth:`~napari_colorize.inference.Colorizer.colorize_lightness`
    shows a user (out-of-gamut colours moved towards gray, uint8).

    Parameters
    ----------
    model : str, path-like or torch.nn.Module, optional
        A registered model name, a checkpoint file or a module following the
        model contract (``l_to_net(L)`` in, ``ab_to_net(ab)`` out).
    data : str or path-like
        ``"punks:test"`` / ``"punks:train"``, or a folder of images (searched
        recursively; ``"folder:PATH"`` also works). Folder images may have any
        size: those whose longest side exceeds the model's working size
        (``chroma_size``) are shrunk to it (area mean, aspect kept), and the
        predicted ab is upsampled bilinearly to full resolution; smaller ones
        are predicted at full size. Files are read by :func:`napari_colorize.image_files.read_rgb`
        (alpha dropped, 16 bits kept, a gray image is a truth without colour).
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
        Longest side the model sees; default: the Colorizer's ``"auto"``
        (:func:`napari_colorize.cards.auto_working_size`: the checkpoint's
        ``extra["chroma_size"]`` near its training size, else 256).
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


def precision_change(
    model, data="punks:test", precision: str = "bf16", batch_size: int = 256, chroma_size=None
) -> float:
    """How far a reduced precision moves a model's colours on a data set, on the CPU.

    Every image's L is coloured twice through the Colorizer's prediction path,
    in float32 and in ``precision``, as :func:`evaluate` colours it; the result
    is the mean CIEDE2000 between the two over all pixels. ``export --evaluate``
    records it for bf16 in the checkpoint's metrics (``bf16_change``), and
    ``precision="auto"`` reads it there (:mod:`napari_colorize.inference.precision`).

    Parameters
    ----------
    model : str, path-like or torch.nn.Module
        As in :func:`evaluate`.
    data : str or path-like
        As in :func:`evaluate`.
    precision : {"bf16", "fp16"}
        The precision compared with float32 (bf16 is rounded the same way on
        any CPU; one with AMX only computes it faster).
    batch_size, chroma_size
        As in :func:`evaluate`.

    Returns
    -------
    float
        Mean ΔE00 between the two colourings (0 where they agree).
    """
    from .inference import Colorizer

    if precision not in ("bf16", "fp16"):
        raise ValueError(f"precision must be 'bf16' or 'fp16', got {precision!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    source = _open_data(data)
    size = chroma_size or "auto"
    options = {"device": "cpu", "chroma_size": size, "batch_size": int(batch_size)}
    runs = [Colorizer(model, precision=p, **options) for p in ("fp32", precision)]
    total, pixels = 0.0, 0
    try:
        for chunk in source.batches(int(batch_size)):
            for batch in chunk:
                lightness = rgb_to_lab(batch.rgb)[..., 0]
                base, other = (rgb_to_lab(run.colorize_lightness(lightness)) for run in runs)
                n = lightness.size
                total += metrics.ciede2000(other, base) * n
                pixels += n
    finally:
        for run in runs:
            run.close()
    return total / pixels


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


# ------------------------------------------------------------------ with hints


def evaluate_hints(
    model,
    n_hints: int,
    data: str = "punks:test",
    *,
    seed: int = 0,
    radius=1,
    batch_size: int = 256,
    device="cpu",
    chroma_size: int | None = None,
    focus: float = 0.0,
) -> dict:
    """Score a hint-aware model given ``n_hints`` hints per image sampled from the truth.

    As :func:`evaluate` (same data specs, same report keys, the same prediction
    path), but the model also sees :func:`~napari_colorize.hint_sampling.sample_hints`
    of each true image, drawn from ``seed`` in the data's order, so reruns and
    other models see the very same hints.

    Parameters
    ----------
    model : str, path-like or torch.nn.Module
        A hint-aware model (a registered name, a checkpoint or a module).
    n_hints : int
        Hints per image (0: the model alone).
    data : str
        ``"punks:test"``, ``"punks:train"`` or a folder of images.
    seed : int
        Seed of the hint positions and patch sizes.
    radius : int or (int, int)
        Patch half-width of each hint (see :func:`~napari_colorize.hint_sampling.sample_hints`).
    batch_size : int
    device : str
    chroma_size : int, optional
        Working size (longest side); default as in :func:`evaluate`.
    focus : float
        Share (0 to 1) of the hint positions drawn in proportion to the model's
        own error without hints, as a user puts hints where the colours are
        wrong; 0: uniform positions.

    Returns
    -------
    dict
        The report keys of :data:`napari_colorize.metrics.REPORT_KEYS`, plus
        ``n_images``, ``data``, ``model``, ``n_hints``, ``seed`` and ``radius``.
    """
    import torch

    from .color import ab_to_net
    from .hint_sampling import sample_hints

    if int(n_hints) < 0:
        raise ValueError(f"n_hints must be >= 0, got {n_hints}")
    if not 0.0 <= float(focus) <= 1.0:
        raise ValueError(f"focus must be between 0 and 1, got {focus}")
    predict = _ColorizerPredictor(model, device, chroma_size, int(batch_size))
    colorizer = predict.colorizer
    if int(n_hints) and not colorizer.model_takes_hints:
        predict.close()
        raise ValueError(
            f"model {predict.name} takes no hints; evaluate it with "
            "napari_colorize.evaluation.evaluate or pick a hint-aware model "
            "(e.g. beta-punks-hints, siggraph17)"
        )
    source = _open_data(data)
    gen = torch.Generator().manual_seed(int(seed))
    parts = []
    try:
        for chunk in source.batches(int(batch_size)):
            for batch in chunk:
                lab = rgb_to_lab(batch.rgb)
                lightness = lab[..., 0]
                ab_true = torch.from_numpy(
                    np.ascontiguousarray(
                        ab_to_net(lab[..., 1:]).transpose(0, 3, 1, 2), dtype=np.float32
                    )
                )
                weights = None
                if focus and int(n_hints):  # the model's own error, at full resolution
                    colorizer.hints = {}
                    alone = colorizer.colorize_lightness(lightness, output="ab")
                    alone = ab_to_net(torch.from_numpy(alone).permute(0, 3, 1, 2))
                    error = (alone - ab_true).norm(dim=1)
                    share = error / error.sum((1, 2), keepdim=True).clamp(min=1e-12)
                    weights = (1.0 - focus) / error[0].numel() + focus * share
                hints = sample_hints(ab_true, int(n_hints), gen, radius, weights)
                colorizer.hints = {"hints": hints.permute(0, 2, 3, 1).numpy()}
                rgb_pred = colorizer.colorize_lightness(lightness)
                parts.append(metrics.score_images(rgb_pred, batch.rgb, batch.alpha))
    finally:
        predict.close()
    scores = metrics.ImageScores.concat(parts)
    report = scores.summary()
    report.update(
        n_images=len(scores),
        data=source.name,
        model=predict.name,
        n_hints=int(n_hints),
        seed=int(seed),
        radius=radius,
        focus=float(focus),
    )
    return report
