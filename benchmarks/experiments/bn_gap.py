"""Does a colorizer depend on batch statistics? Its score in eval mode and with batch BN.

``python -m benchmarks.experiments.bn_gap MODEL... [--split test|val]`` scores each model
(a registered name or a checkpoint) on the punks twice: as it runs for a user
(eval mode: BatchNorm uses the stored running statistics) and with BatchNorm
normalising every batch of 250 images by that batch's own statistics (train
mode, without updating anything). A network trained the way it is deployed
scores the same both ways; a large gap means the stored statistics do not fit
the weights. It also prints the worst images' error in eval mode.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np


@contextlib.contextmanager
def _batch_statistics(model):
    """BatchNorm normalises by each batch's own statistics; the stored ones stay as they are."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.train()
        b.momentum = 0.0  # running = (1 - 0) * running: nothing is updated
    try:
        yield model
    finally:
        for b, m in zip(bns, momenta):
            b.momentum = m
        model.eval()


def gap(name: str, split: str = "test") -> dict[str, float]:
    """``ciede2000_fg`` of ``name`` in eval mode and with batch statistics, and the worst image."""
    from napari_colorize import metrics
    from napari_colorize.registry import load_model

    from ..common import predict_punks, punks_truth

    rgb, alpha, _, _ = punks_truth(split)
    model, _ = load_model(name)  # in eval mode
    eval_scores = metrics.score_images(predict_punks(model, rgb)[0], rgb, alpha)
    with _batch_statistics(model):
        batch_scores = metrics.score_images(predict_punks(model, rgb)[0], rgb, alpha)
    per_image = eval_scores.de_fg_sum / np.maximum(eval_scores.n_fg, 1)
    return {
        "eval": eval_scores.summary()["ciede2000_fg"],
        "batch_bn": batch_scores.summary()["ciede2000_fg"],
        "worst_eval": float(per_image.max()),
        "over_10": int((per_image > 10).sum()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.experiments.bn_gap", description=__doc__
    )
    parser.add_argument("models", nargs="+")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(
        "| model | ciede2000_fg, eval mode | with batch statistics | worst image | images > 10 |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.models:
        r = gap(name, args.split)
        print(
            f"| {name} | {r['eval']:.3f} | {r['batch_bn']:.3f} | {r['worst_eval']:.1f} "
            f"| {r['over_10']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
