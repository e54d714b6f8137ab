"""Why beta-punks is built as it is: short runs of variants scored on held-out train punks.

``python -m benchmarks.experiments.beta_ablation [--epochs 8] [--threads 1] [VARIANT ...]``
trains each variant of the ``beta-punks`` preset (a :class:`TrainConfig`
override, see :data:`VARIANTS`) on train ids 0-8499 and prints the metrics of
``napari_colorize.metrics.report`` on train ids 8500-8999 (alpha-masked
``ciede2000_fg`` included). The test split is never touched: this is where the
preset's choices were made. Each variant takes a few minutes per epoch on 2
CPU cores; the table in docs/benchmarks.md ("Colorization quality on
CryptoPunks") came from ``--epochs 8``.
"""

from __future__ import annotations

import argparse
import json
import time

#: name -> overrides of the beta-punks preset
VARIANTS = {
    "delta_e": {},
    "l1": {"loss": "l1"},
    "mse": {"loss": "mse"},
    "no-flips": {"flips": False},
    "beta-original": {"preset": "beta-original"},
}


def heldout_report(model) -> dict:
    """Metrics of ``model`` on train ids 8500-8999 (the presets' validation punks)."""
    from napari_colorize import metrics

    from ..common import predict_punks, punks_truth

    rgb, alpha, _, _ = punks_truth("val")
    pred, _ = predict_punks(model.eval(), rgb)
    return metrics.report(pred, rgb, alpha)


def run_variant(name: str, epochs: int) -> dict:
    """Train one variant without writing files; its held-out report and training time."""
    from napari_colorize.training.presets import preset_run
    from napari_colorize.training.trainer import Trainer

    overrides = dict(VARIANTS[name])
    preset = overrides.pop("preset", "beta-punks")
    config, train, val = preset_run(
        preset, epochs=epochs, out=None, checkpoint_every=0, preview_every=0, **overrides
    )
    start = time.perf_counter()
    trainer = Trainer(config, train, val)
    trainer.fit()
    seconds = time.perf_counter() - start
    report = {k: round(float(v), 4) for k, v in heldout_report(trainer.model).items()}
    return {"variant": name, "epochs": epochs, "train_s": round(seconds), **report}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for name in args.variants:
        print(json.dumps(run_variant(name, args.epochs)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
