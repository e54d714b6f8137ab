"""Does a colorizer depend on batch statistics? Its score in eval mode and with batch BN.

``python -m benchmarks.bn_gap MODEL... [--split test|val]`` scores each model
(a registered name or a checkpoint) on the punks twice: as it runs for a user
(eval mode: BatchNorm uses the stored running statistics) and with BatchNorm
normalising every batch of 250 images by that batch's own statistics (train
mode, without updating anything). A network trained the way it is deployed
scores the same both ways; a large gap means the stored statistics do not fit
the weights. It also prints the worst images' error in eval mode.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _predict(model, x, batch_bn: bool):
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.train(batch_bn)
        b.momentum = 0.0  # batch statistics, but the running ones stay as stored
    try:
        with torch.no_grad():
            return torch.cat([model(x[i : i + 250]) for i in range(0, len(x), 250)])
    finally:
        for b, m in zip(bns, momenta):
            b.momentum = m
        model.eval()


def gap(name: str, split: str = "test") -> dict[str, float]:
    """``ciede2000_fg`` of ``name`` in eval mode and with batch statistics, and the worst image."""
    import torch

    from napari_colorize import metrics
    from napari_colorize.color import l_to_net, lab_to_rgb, net_to_ab, rgb_to_lab
    from napari_colorize.registry import load_model

    from .full import _data

    rgb, alpha, _, _ = _data(split)
    lightness = rgb_to_lab(rgb)[..., 0]
    x = torch.from_numpy(l_to_net(lightness)[:, None].astype(np.float32))
    model, _ = load_model(name)
    out = {}
    for key, batch_bn in (("eval", False), ("batch_bn", True)):
        ab = net_to_ab(_predict(model, x, batch_bn).float()).permute(0, 2, 3, 1).numpy()
        pred = lab_to_rgb(np.concatenate([lightness[..., None], ab], axis=-1))
        scores = metrics.score_images(pred, rgb, alpha)
        out[key] = scores.summary()["ciede2000_fg"]
        if key == "eval":
            per_image = scores.de_fg_sum / np.maximum(scores.n_fg, 1)
            out["worst_eval"] = float(per_image.max())
            out["over_10"] = int((per_image > 10).sum())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bn_gap", description=__doc__)
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
