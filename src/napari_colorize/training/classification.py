"""Training a classifier with the colorizers' :class:`~.trainer.Trainer` (``inception-punks``).

:class:`ClassificationTask` is the per-step work for a model with ``heads``
(:class:`~napari_colorize.models.inception.InceptionConfig`): cross-entropy on
each softmax head (exclusive classes, e.g. the five punk types) plus binary
cross-entropy on each sigmoid head (independent labels, e.g. the 87
accessories). Batches are ``(l_net, targets)`` with 0/1 targets laid out like
the model's outputs (:class:`~napari_colorize.data.labels.PunksLabelsDataset`).

It is the task of the ``inception`` architecture (``TrainConfig(task=None)``, or
``task="classification"``); options in ``task_config``: ``sigmoid_reduction``,
``sigmoid_weight``, ``label_smoothing``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .task import ColorizationTask

__all__ = [
    "TASK",
    "ClassificationTask",
    "export_classifier",
    "head_losses",
]

#: The ``TrainConfig.task`` string of :class:`ClassificationTask`.
TASK = "napari_colorize.training.classification:ClassificationTask"


def head_losses(
    logits, targets, heads, *, label_smoothing: float = 0.0, sigmoid_reduction: str = "mean",
    class_weights=None,
) -> dict:  # fmt: skip
    """Per-head losses: cross-entropy (softmax heads), binary cross-entropy (sigmoid heads).

    Parameters
    ----------
    logits, targets : torch.Tensor
        ``(N, total)``; targets 0/1 (one-hot within each softmax head).
    heads : sequence of (name, kind, size)
    label_smoothing : float
        Of the softmax heads' cross-entropy.
    sigmoid_reduction : {"mean", "sum"}
        Average the binary cross-entropy over a sigmoid head's labels, or add it up
        (per image): with many rare labels the mean gives each label a tiny share
        of the gradient and they are learnt far more slowly.
    class_weights : dict, optional
        ``{softmax head: [weight per class]}``, e.g. to count rare classes more.

    Returns
    -------
    dict
        ``{head name: scalar loss}``.
    """
    from ..models.inception import split_heads

    parts, wanted = split_heads(logits.float(), heads), split_heads(targets.float(), heads)
    out = {}
    for name, kind, _ in heads:
        if kind == "softmax":
            weight = (class_weights or {}).get(name)
            if weight is not None:
                weight = parts[name].new_tensor(weight)
            out[name] = F.cross_entropy(
                parts[name], wanted[name].argmax(-1), weight=weight,
                label_smoothing=label_smoothing,
            )  # fmt: skip
        else:
            bce = F.binary_cross_entropy_with_logits(parts[name], wanted[name])
            out[name] = bce * parts[name].shape[-1] if sigmoid_reduction == "sum" else bce
    return out


class ClassificationTask(ColorizationTask):
    """Train a classifier ``model`` (L -> logits) on ``(l_net, targets)`` batches.

    Parameters
    ----------
    model : InceptionV3
        Any module whose ``config.heads`` (or ``config.num_classes`` for one
        softmax) describes its outputs.
    config : TrainConfig, optional
        Its ``task_config`` may set ``sigmoid_reduction`` (``"mean"``, the default,
        or ``"sum"`` over each sigmoid head's labels, see :func:`head_losses`),
        ``sigmoid_weight`` (factor of the sigmoid heads' losses, default 1),
        ``label_smoothing`` (softmax heads, default 0) and ``class_weights``
        (``{softmax head: [weight per class]}``).
    """

    def __init__(self, model, config=None):
        self.model = model
        options = dict(getattr(config, "task_config", None) or {})
        known = {"sigmoid_reduction", "sigmoid_weight", "label_smoothing", "class_weights"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"unknown task_config option(s) {unknown} for the classification task; "
                f"use {', '.join(sorted(known))}"
            )
        self.sigmoid_reduction = str(options.get("sigmoid_reduction", "mean"))
        if self.sigmoid_reduction not in ("mean", "sum"):
            raise ValueError(
                f"sigmoid_reduction must be 'mean' or 'sum', not {self.sigmoid_reduction!r}"
            )
        self.sigmoid_weight = float(options.get("sigmoid_weight", 1.0))
        self.class_weights = options.get("class_weights") or {}
        if not isinstance(self.class_weights, dict):
            raise ValueError(
                "class_weights must be {softmax head: [weight per class]}; "
                f"got {self.class_weights!r} (the presets resolve 'sqrt-balanced' from their data)"
            )
        self.label_smoothing = float(options.get("label_smoothing", 0.0))
        cfg = model.config
        self.heads = cfg.heads or (("classes", "softmax", cfg.num_classes),)
        self.loss_name = "classification"

    def _loss(self, logits, targets):
        losses = head_losses(
            logits, targets, self.heads, label_smoothing=self.label_smoothing,
            sigmoid_reduction=self.sigmoid_reduction, class_weights=self.class_weights,
        )  # fmt: skip
        kinds = {name: kind for name, kind, _ in self.heads}
        total = sum(
            v * (self.sigmoid_weight if kinds[k] == "sigmoid" else 1.0) for k, v in losses.items()
        )
        return total, losses

    @staticmethod
    def _logits(out):
        return out[0] if isinstance(out, tuple) else out

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch = (l, targets)``; returns the detached losses."""
        l_net, targets, *_ = batch
        with ctx.autocast():
            out = self.model(l_net)
        loss, parts = self._loss(self._logits(out).float(), targets)
        if isinstance(out, tuple) and out[1] is not None:  # auxiliary classifier, as torchvision
            loss = loss + 0.4 * self._loss(out[1].float(), targets)[0]
        ctx.step(loss, "model")
        return {"loss": loss.detach(), **{f"loss_{k}": v.detach() for k, v in parts.items()}}

    @torch.no_grad()
    def validation_step(self, batch) -> dict[str, float]:
        """Batch means of the loss and of each head's accuracy (``acc_<head>``).

        Softmax heads: the arg-max is the true class. Sigmoid heads: the fraction
        of labels right at the 0.5 threshold.
        """
        from ..models.inception import split_heads

        l_net, targets, *_ = batch
        logits = self._logits(self.model(l_net)).float()
        loss, _ = self._loss(logits, targets)
        out = {"loss": float(loss)}
        parts, wanted = split_heads(logits, self.heads), split_heads(targets, self.heads)
        for name, kind, _ in self.heads:
            if kind == "softmax":
                right = parts[name].argmax(-1) == wanted[name].argmax(-1)
            else:
                right = (parts[name] > 0) == (wanted[name] > 0.5)
            out[f"acc_{name}"] = float(right.float().mean())
        return out

    @torch.no_grad()
    def preview(self, l_net: torch.Tensor) -> np.ndarray:
        """A classifier has no colour preview: the gray input as RGB uint8."""
        from ..color import net_to_l

        gray = np.clip(net_to_l(l_net.float())[0, 0].cpu().numpy() * 2.55, 0, 255)
        return np.repeat(gray.round().astype(np.uint8)[..., None], 3, axis=-1)


def sqrt_balanced_weights(onehot, power: float = 0.5) -> list[float]:
    """Class weights ``frequency ** -power``, scaled so that the mean weight per item is 1.

    ``power=0.5`` (``"sqrt-balanced"``) is halfway (in the log) between no
    weighting and fully balanced classes (``power=1``, ``"balanced"``): rare
    classes count more without a handful of items dominating the loss.
    """
    counts = np.asarray(onehot).sum(0).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1) ** -float(power), 0.0)
    weights /= (weights * counts).sum() / counts.sum()
    return [round(float(w), 4) for w in weights]


# ------------------------------------------------------------------ export


def export_classifier(src, dst, *, half: bool = True, evaluate_on: str | None = "test") -> dict:
    """Write the inference file of a punks classifier with its class names and scores.

    Parameters
    ----------
    src, dst : str or path
        The training checkpoint and the file to write.
    half : bool
        Store the weights as float16 (the model computes in float32).
    evaluate_on : {"test", "train"} or None
        The punks split whose scores (:func:`napari_colorize.classify.classifier_report`)
        are stored as the file's metrics; the validation hold-out (train ids 8500-8999)
        is always scored too, as ``val_*``.

    Returns
    -------
    dict
        The metrics stored.
    """
    from ..classify import classifier_report
    from ..data.labels import punks_label_heads
    from ..data.punks import PUNKS_HOLDOUT, load_punks
    from .trainer import export_model

    train = load_punks("train")
    types, accessories = punks_label_heads(train.label_names)
    names = {"type": types, "accessories": accessories}
    path = export_model(
        src, dst, dtype=torch.float16 if half else None, extra={"class_names": names}
    )
    cut = len(train) - PUNKS_HOLDOUT
    metrics = {}
    if evaluate_on is not None:
        report = classifier_report(path, evaluate_on)
        metrics.update({k: round(v, 4) for k, v in report.items() if isinstance(v, float)})
        metrics.update(data=report["data"], n_images=report["n_images"])
    val = classifier_report(path, "train", indices=range(cut, len(train)), punks=train)
    metrics.update({f"val_{k}": round(v, 4) for k, v in val.items() if isinstance(v, float)})
    export_model(path, path, metrics=metrics)
    return metrics


def main(argv=None) -> int:
    """``python -m napari_colorize.training.classification SRC DST [--full-precision]``."""
    import argparse
    import json

    p = argparse.ArgumentParser(
        prog="python -m napari_colorize.training.classification",
        description="Export a trained punks classifier with its class names and test scores.",
    )
    p.add_argument("src", help="training checkpoint (from --preset inception-punks)")
    p.add_argument("dst", help="inference file to write")
    p.add_argument("--full-precision", action="store_true", help="keep float32 weights")
    args = p.parse_args(argv)
    metrics = export_classifier(args.src, args.dst, half=not args.full_precision)
    print(json.dumps({"path": args.dst, "metrics": metrics}, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
