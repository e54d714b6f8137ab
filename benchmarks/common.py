"""Helpers shared by the benchmark suites and the experiments in :mod:`benchmarks.experiments`.

The punks' truth by punk type and the bundled-model scores that ``full`` and
the GAN experiments compare, and ``beta`` trained on part of one image as the
Training widget does (the any-image suite and the lookup-table experiment).
Machine, load and docs sections live in :mod:`benchmarks.report`.
"""

from __future__ import annotations

import time

import numpy as np

#: Punk types the scores are broken down by (human = female or male).
GROUPS = ("alien", "ape", "zombie", "human")


def punks_truth(split: str):
    """``(rgb, alpha, groups, label)`` of punks:test or the validation punks (``"val"``)."""
    from napari_colorize.data.punks import PUNK_TYPES, load_punks
    from napari_colorize.training.presets import PUNKS_HOLDOUT

    punks = load_punks("test" if split == "test" else "train")
    rows = slice(None) if split == "test" else slice(len(punks) - PUNKS_HOLDOUT, None)
    rgb, alpha, labels = punks.rgb[rows], punks.alpha[rows], punks.labels[rows]
    names = [n.lower() for n in punks.label_names]
    types = labels[:, [names.index(t) for t in PUNK_TYPES]].astype(bool)
    groups = np.stack([types[:, 0], types[:, 1], types[:, 2], types[:, 3] | types[:, 4]], 1)
    label = "punks:test" if split == "test" else "punks:train ids 8500-8999 (validation)"
    return rgb, alpha, groups, label


def predict_punks(model, rgb, batch_size: int = 250):
    """``(predicted RGB uint8, seconds)``: ab from the true L of ``rgb``, recombined with that L.

    Through the Colorizer's prediction path on the CPU
    (:meth:`~napari_colorize.inference.Colorizer.colorize_lightness`, as
    ``napari-colorize evaluate`` scores), with ``model`` in the mode it comes
    in (``bn_gap`` measures it with batch statistics).
    """
    from napari_colorize.color import rgb_to_lab
    from napari_colorize.inference import Colorizer

    lightness = rgb_to_lab(rgb)[..., 0]
    was_training = model.training
    with Colorizer(model, device="cpu", batch_size=batch_size) as colorizer:
        model.train(was_training)
        start = time.perf_counter()
        pred = colorizer.colorize_lightness(lightness)
        seconds = time.perf_counter() - start
    return pred, seconds


def score_punks(model_name, rgb, alpha, groups) -> dict:
    """Overall and per-group metrics of one model (ab from L, recombined with the true L)."""
    from napari_colorize import metrics
    from napari_colorize.registry import load_model

    model, _ = load_model(model_name)
    pred, seconds = predict_punks(model, rgb)
    scores = metrics.score_images(pred, rgb, alpha)
    out = {"all": {**scores.summary(), "n_images": len(scores)}}
    out.update(metrics.breakdown(scores, groups, list(GROUPS)))
    out["ms_per_image"] = 1000 * seconds / len(rgb)
    return out


def validation_scores(path) -> dict:
    """Overall scores of the checkpoint ``path`` on the validation punks (train ids 8500-8999)."""
    rgb, alpha, groups, _ = punks_truth("val")
    return score_punks(str(path), rgb, alpha, groups)["all"]


def train_beta(left, right, *, table: bool, steps: int, seed: int):
    """Train beta on ``left``, validating on ``right``; ``(model, result, seconds)``.

    ``right`` must not be the image scored afterwards: the trainer's choices
    (the residual's scale) are made on it.
    """
    from napari_colorize.data.layer_datasets import (
        LayerSource,
        Region,
        RegionDataset,
        layer_datasets,
    )
    from napari_colorize.training import TrainConfig, Trainer

    patch = 64
    data = layer_datasets([LayerSource("left half", left)], patch, split="none", seed=seed)
    h, w = right.shape[:2]
    val = RegionDataset([LayerSource("right half", right)], [Region(0, 0, 0, 0, h, w)], patch,
                        train=False)  # fmt: skip
    config = TrainConfig(
        arch="beta", model_config={"lightness_table": table}, max_steps=steps, batch_size=16,
        patch_size=patch, lr=1e-3, device="cpu", amp=False, seed=seed, val_every=50,
    )  # fmt: skip
    trainer = Trainer(config, data.train, val)
    start = time.perf_counter()
    result = trainer.fit()
    return trainer.model, result, time.perf_counter() - start
