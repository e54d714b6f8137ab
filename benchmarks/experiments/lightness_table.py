"""Does training on a user's image beat the lightness lookup table? Held-out halves.

``python -m benchmarks.experiments.lightness_table [--image immunohistochemistry] [--steps 200]
[--threads 2] [--seed 0]`` trains ``beta`` (the Training widget's defaults:
default config, batch 16, 64-pixel patches, lr 1e-3) as the widget does from
an RGB layer (:func:`napari_colorize.data.layer_datasets.layer_datasets`, no split) on
the left half of one of scikit-image's colour photos, validating on the right
half, twice: with the lightness lookup table (``lightness_table=True``, what
runs from layers use) and without it. Each model, the table alone and gray are
then scored on the right half at full resolution through
:class:`napari_colorize.inference.Colorizer` (``chroma_size=None``), by mean
CIEDE2000 (:func:`napari_colorize.metrics.ciede2000`). Prints one JSON line
per method; docs/benchmarks.md ("Training against the lightness lookup table")
holds the figures.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..common import train_beta


def halves(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Left and right half (RGB uint8) of ``skimage.data.<name>()``."""
    import skimage.data

    rgb = getattr(skimage.data, name)()[..., :3]
    w = rgb.shape[1] // 2
    return np.ascontiguousarray(rgb[:, :w]), np.ascontiguousarray(rgb[:, w:])


def score(module, rgb_true: np.ndarray) -> float:
    """Mean CIEDE2000 of ``module``'s colours on ``rgb_true`` (its own L kept), full resolution."""
    from napari_colorize import metrics
    from napari_colorize.color import rgb_to_lab
    from napari_colorize.inference import Colorizer

    lab_true = rgb_to_lab(rgb_true.astype(np.float32) / 255.0)
    if module is None:  # gray: the true L, no colour
        lab_pred = lab_true.copy()
        lab_pred[..., 1:] = 0.0
    else:
        lab_pred = Colorizer(module.eval(), device="cpu", chroma_size=None).predict_lab(rgb_true)
    return float(metrics.ciede2000(lab_pred[None], lab_true[None]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--image",
        default="immunohistochemistry",
        help="a scikit-image colour sample (default immunohistochemistry)",
    )
    parser.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)  # fmt: skip
    args = parser.parse_args(argv)
    import torch

    from napari_colorize.models.lightness_table import LightnessTable

    torch.set_num_threads(args.threads)
    left, right = halves(args.image)
    cut = round(left.shape[0] * 0.8)  # validate on the left half's bottom fifth, score the right
    rows = [{"method": "gray", "ciede2000": score(None, right)}]
    for table in (True, False):
        model, result, seconds = train_beta(
            left[:cut], left[cut:], table=table, steps=args.steps, seed=args.seed
        )
        if table:  # the table alone: the model's own start
            lookup = LightnessTable().set_table(model.lightness_table.table.cpu().numpy())
            rows.append({"method": "lookup table", "ciede2000": score(lookup, right)})
        kept = float(model.lightness_table.residual_scale) if table else None
        rows.append({
            "method": "beta + table" if table else "beta", "ciede2000": score(model, right),
            "val_delta_e": result.metrics.get("val_delta_e"),
            "val_table_delta_e": result.metrics.get("val_table_delta_e"),
            "residual_scale": kept, "steps": result.step, "train_s": round(seconds, 1),
        })  # fmt: skip
    for row in rows:
        print(json.dumps({"image": args.image, "seed": args.seed, **row}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
